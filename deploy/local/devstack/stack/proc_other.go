//go:build !linux

package stack

import "syscall"

// childAttr puts a child in its own process group, so a terminal's Ctrl-C reaches only the
// supervisor, which then stops the children in order.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
