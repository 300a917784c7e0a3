//go:build !unix

package main

import "os"

// pollable is unix-only; elsewhere standard input is copied through a pipe.
func pollable(*os.File) *os.File { return nil }
