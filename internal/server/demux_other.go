//go:build !linux

package server

import "syscall"

// Raw accepting needs the epoll transport, which needs Linux.
func (d *demux) rawListener() syscall.RawConn  { return nil }
func (d *demux) rawAcceptLoop(syscall.RawConn) {}

func deferAccept(string, string, syscall.RawConn) error { return nil }
