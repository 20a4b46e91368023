//go:build unix && !linux

package proc

import "syscall"

// Attr is what Start gives every child; it is exported for code that must still drive an
// exec.Cmd itself. The child leads a process group of its own, so a terminal's Ctrl-C reaches
// only the supervisor, which then stops its children in order, and a signal to the group
// reaches whatever the child started too. Only Linux can also tie the child's life to the
// supervisor's.
func Attr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
