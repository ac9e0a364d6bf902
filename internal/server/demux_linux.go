//go:build linux

package server

import (
	"bytes"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/heraldhq/herald/internal/wsconn"
)

// acceptBatch bounds the sockets taken from the listener per wake-up.
const acceptBatch = 64

// rawListener returns a duplicate of the listener's socket when
// rawAcceptLoop can serve it: a TCP listener, and a takeFD to hand upgrades
// to. The duplicate is an os.File because the runtime waits for readiness of
// files, not of a listener's raw connection; close closes it with the
// listener, as it keeps the socket listening.
func (d *demux) rawListener() syscall.RawConn {
	tl, ok := d.ln.(*net.TCPListener)
	if !ok || d.takeFD == nil {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || dupErr != nil {
		return nil
	}
	if err := inheritNoDelay(fd); err != nil {
		unix.Close(fd)
		return nil
	}
	// The duplicate shares the listener's O_NONBLOCK: the runtime polls it.
	f := os.NewFile(uintptr(fd), "listener")
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	d.rawFile = f
	return frc
}

// inheritNoDelay sets TCP_NODELAY on a listening socket. Go sets it on
// every connection it accepts (frames are written whole, so Nagle's delay
// buys nothing); Linux copies a listener's options to the sockets it
// accepts, so setting it once here spares rawAcceptLoop a setsockopt per
// connection.
func inheritNoDelay(lfd int) error {
	return unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// rawAcceptLoop is acceptLoop for the epoll transport. It accepts sockets
// itself, outside the Go runtime, and reads each one's first bytes at once:
// a complete upgrade head goes straight to takeFD, so a WebSocket costs the
// server accept4, one read and the poller's epoll_ctl,
// instead of a runtime connection (netpoll registration, getsockname,
// keep-alive options) that is then duplicated and closed again. A socket
// whose head is not all there yet (the listener asks the kernel to defer
// accepting until data comes, so that is rare), or that is not an upgrade,
// becomes a runtime connection and takes acceptLoop's way.
func (d *demux) rawAcceptLoop(rc syscall.RawConn) {
	defer d.wg.Done()
	buf := make([]byte, headBufBytes)
	fds := make([]int, 0, acceptBatch)
	for {
		var acceptErr error
		fds = fds[:0]
		err := rc.Read(func(lfd uintptr) bool {
			for len(fds) < acceptBatch {
				fd, err := accept4(int(lfd))
				switch err {
				case nil:
					fds = append(fds, fd)
					continue
				case unix.EAGAIN:
					return len(fds) > 0 // nothing more: wait for the next
				case unix.EINTR, unix.ECONNABORTED:
					continue // as the runtime's Accept does
				}
				acceptErr = &net.OpError{Op: "accept", Net: "tcp", Addr: d.ln.Addr(), Err: os.NewSyscallError("accept4", err)}
				return true
			}
			return true
		})
		for _, fd := range fds {
			d.serveFD(fd, buf)
		}
		if err == nil && acceptErr == nil {
			continue
		}
		if err == nil {
			err = acceptErr
		}
		// As in acceptLoop: net/http's Accept gets the error, backs off and
		// logs if it is temporary (out of descriptors), and stops if not.
		select {
		case d.conns <- accepted{err: err}:
		case <-d.done:
			return
		}
		if !isTemporary(err) {
			return
		}
	}
}

// accept4 accepts one connection as a non-blocking, close-on-exec socket
// without asking for the peer's address.
func accept4(lfd int) (int, error) {
	fd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0,
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// serveFD routes one accepted socket, reading into buf what has arrived.
// Over the bound on pending connections the socket is closed before
// anything else is done with it.
func (d *demux) serveFD(fd int, buf []byte) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed || !d.pending.acquire() {
		unix.Close(fd)
		return
	}
	// TCP_NODELAY came from the listener: see inheritNoDelay.
	n, err := unix.Read(fd, buf)
	switch {
	case n > 0:
		if d.ours(buf[:n]) {
			if end := wsconn.HeadEnd(buf[:n]); end >= 0 && d.takeFD(fd, buf[:end], buf[end:n]) {
				d.pending.release() // a WebSocket connection now
				return
			}
		}
	case n == 0 && err == nil, err != nil && err != unix.EAGAIN && err != unix.EINTR:
		unix.Close(fd) // gone before saying anything, as acceptLoop's readers drop it
		d.pending.release()
		return
	default:
		n = 0
	}
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // a duplicate the runtime polls
	f.Close()
	if err != nil {
		d.pending.release()
		return
	}
	d.startRoute(nc, bytes.Clone(buf[:n])) // with the pending slot
}

// deferAccept asks the kernel to complete accept only once the client has
// sent something (or after about a second): every HTTP client speaks first,
// so the head is usually there to read when the socket is accepted.
func deferAccept(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
