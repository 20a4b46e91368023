//go:build unix && !linux

package main

import "syscall"

// childAttr gives the service its own process group, so a terminal's Ctrl-C reaches the bench
// first and the bench stops the service in order.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
