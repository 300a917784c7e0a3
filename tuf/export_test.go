package tuf

// SetJoinHook makes c call f whenever a caller joins a refresh in progress,
// so tests can tell that concurrent callers shared it.
func SetJoinHook(c *Client, f func()) { c.onJoin = f }
