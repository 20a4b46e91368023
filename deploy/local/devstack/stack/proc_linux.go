package stack

import "syscall"

// childAttr puts a child in its own process group, so a terminal's Ctrl-C reaches only the
// supervisor, which then stops the children in order; and asks the kernel to send SIGTERM to
// the child if the supervisor dies without doing so.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
