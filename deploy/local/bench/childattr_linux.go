package main

import "syscall"

// childAttr gives the service its own process group, so a terminal's Ctrl-C reaches the bench
// first and the bench stops the service in order, and has the kernel send SIGTERM to the
// service if the bench dies without doing so.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
