//go:build linux

package server

import "golang.org/x/sys/unix"

// fdTake is the test demux's takeFD: take's answer, written to the socket.
func fdTake(ds *demuxServer) func(int, []byte, []byte) bool {
	return func(fd int, head, rest []byte) bool {
		if !wantsTake(head) {
			return false
		}
		ds.takenFD.Add(1)
		unix.Write(fd, []byte(takeAnswer(head, rest)))
		unix.Close(fd)
		return true
	}
}
