//go:build linux

package verify

import (
	"os"
	"os/exec"
)

// verifiedCommand returns a command that executes the open, verified file f.
// The child receives f as descriptor 3 and the kernel resolves
// /proc/self/fd/3 in the child at exec time, so what runs is the file whose
// contents were hashed, whatever happens to the path in the meantime.
func verifiedCommand(f *os.File, argv0 string, args []string) *exec.Cmd {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		// No procfs (a minimal container): fall back to the read-only
		// store entry, as on other systems.
		return pathCommand(f, argv0, args)
	}
	return &exec.Cmd{
		Path:       "/proc/self/fd/3",
		Args:       append([]string{argv0}, args...),
		ExtraFiles: []*os.File{f},
	}
}
