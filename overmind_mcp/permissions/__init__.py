"""The permission bridge: a child asks; its policy, its parent, the client or a person answers."""
