//go:build !unix

package server

import "syscall"

// smallReceiveBuffer leaves the receive buffer as it is where there is no
// portable way to set it.
func smallReceiveBuffer(network, address string, c syscall.RawConn) error { return nil }
