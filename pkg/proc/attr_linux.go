package proc

import "syscall"

// Attr is what Start gives every child; it is exported for code that must still drive an
// exec.Cmd itself. The child leads a process group of its own, so a terminal's Ctrl-C reaches
// only the supervisor, which then stops its children in order, and a signal to the group
// reaches whatever the child started too. The kernel sends the child SIGTERM should the
// supervisor die without stopping it.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
