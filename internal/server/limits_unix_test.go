//go:build unix

package server

import "syscall"

// smallReceiveBuffer is a net.Dialer Control that sets a 4 KiB receive
// buffer on the socket before it connects.
func smallReceiveBuffer(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
	})
	if err != nil {
		return err
	}
	return serr
}
