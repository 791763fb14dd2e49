//! WebSocket forms (in progress).
