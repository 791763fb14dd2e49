//! The Session Manager data channel that ECS ExecuteCommand opens: [`codec`] (the binary
//! agent messages and their JSON payloads), [`stream`] (sequence numbers, acknowledgements,
//! order and resends, the same on both sides) and [`session`] (the client). The cloud
//! simulator's ECS face plays the agent with the same codec.

pub mod codec;
pub mod session;
pub mod stream;
#[cfg(test)]
mod tests_fuzz;
