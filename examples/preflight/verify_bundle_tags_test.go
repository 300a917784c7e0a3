//go:build !preflight_wip

package main

// vbBuildTags are the build tags of this test binary, passed on when the
// process benchmark builds the CLI so that it measures the same program.
const vbBuildTags = ""
