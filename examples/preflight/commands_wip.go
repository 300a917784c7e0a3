//go:build !preflight_wip

package main

// Until the library packages land, the CLI has no commands.
func commands() []command { return nil }

func serverMain([]string) bool { return false }
