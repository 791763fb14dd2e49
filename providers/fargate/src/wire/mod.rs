//! ECS, CloudWatch Logs and STS as they are on the wire, and nothing else.
