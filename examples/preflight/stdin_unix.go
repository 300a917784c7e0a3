//go:build unix

package main

import (
	"os"
	"syscall"
)

// pollable returns f reopened for Go's poller when it is a pipe, else nil.
// Only a pipe's read end is changed: a terminal's non-blocking flag would
// outlive this process and disturb the shell that started it.
func pollable(f *os.File) *os.File {
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeNamedPipe == 0 {
		return nil
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), f.Name())
}
