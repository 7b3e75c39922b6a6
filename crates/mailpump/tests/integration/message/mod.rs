//! The message encoder: golden outputs and defaults, chunk-split invariance, header safety, and
//! the deliberate differences from LuaSocket's `smtp.message`.

mod chunks;
mod differences;
mod encoder;
mod headers;
mod replay;
