//go:build !linux

package verify

import (
	"os"
	"os/exec"
)

// verifiedCommand executes the read-only store entry by path; see the
// package documentation for what that leaves open on this system.
func verifiedCommand(f *os.File, argv0 string, args []string) *exec.Cmd {
	return pathCommand(f, argv0, args)
}
