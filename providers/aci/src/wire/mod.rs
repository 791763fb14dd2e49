//! ACI's API as it is on the wire, and nothing else.
