//go:build unix

package verify

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the server in its own process group so that Close
// can end it together with any children it started.
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, sig)
}
