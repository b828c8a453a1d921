//go:build !linux

package devstack

import "syscall"

// childAttr: only Linux has a parent-death signal; elsewhere the parent's own stop must run.
func childAttr() *syscall.SysProcAttr { return nil }
