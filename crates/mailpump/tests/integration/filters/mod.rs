//! The streaming filters and the low-level `mime` primitives, measured against LuaSocket.

mod differences;
mod luasocket;
mod props;
