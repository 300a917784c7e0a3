package tuf

// SetJoinHook makes c call f whenever a caller joins a refresh in progress,
// so tests can tell that concurrent callers shared it.
func SetJoinHook(c *Client, f func()) { c.onJoin = f }

// LoadedRoles lists the delegated roles the client's current state has
// verified, so tests can tell whether a refresh kept them.
func LoadedRoles(c *Client) []string {
	c.mu.Lock()
	s := c.current
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var roles []string
	for role := range s.trusted.Targets {
		if role != "targets" {
			roles = append(roles, role)
		}
	}
	return roles
}
