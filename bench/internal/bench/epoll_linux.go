//go:build linux

package bench

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const epollSupported = true

// epollReader reads connections with a few epoll loops, one goroutine each,
// sharing one read buffer per loop: an idle connection costs no goroutine
// and no buffer.
type epollReader struct {
	loops []*epollLoop
	// by socket descriptor, which rides in the epoll event: a descriptor
	// names one socket until the loop that serves it closes it, having
	// removed it from here first (a dial given up and retried under the
	// same conn id is another socket)
	conns []atomic.Pointer[conn]
	next  atomic.Uint32
	stop  atomic.Bool
	wg    sync.WaitGroup
	once  sync.Once
}

type epollLoop struct {
	epfd int
	sh   *shard
}

func newEpollReader(loops, maxConns int, shards []*shard) (*epollReader, error) {
	r := &epollReader{conns: make([]atomic.Pointer[conn], fdTableSize(maxConns))}
	for i := range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		l := &epollLoop{epfd: epfd, sh: shards[i%len(shards)]}
		r.loops = append(r.loops, l)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(l)
		}()
	}
	return r, nil
}

func (r *epollReader) name() string { return "epoll" }

// adopt takes c's socket out of the Go runtime and into a loop. Nothing may
// use c.nc afterwards.
func (r *epollReader) adopt(c *conn) error {
	fd, err := dupConn(c.nc)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	c.nc.Close() // the duplicate keeps the socket open
	c.nc = nil
	c.fd = fd
	c.wmu.Unlock()
	return r.register(c, unix.EPOLLIN|unix.EPOLLRDHUP)
}

// register hands c, socket and all, to a loop.
func (r *epollReader) register(c *conn, events uint32) error {
	if c.fd >= len(r.conns) {
		return fmt.Errorf("descriptor %d beyond the table of %d", c.fd, len(r.conns))
	}
	r.conns[c.fd].Store(c)
	l := r.loops[int(r.next.Add(1))%len(r.loops)]
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		r.conns[c.fd].Store(nil)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// fdTableSize covers every descriptor the process may open.
func fdTableSize(conns int) int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 1<<22 {
		return int(max(lim.Cur, uint64(conns)+1024))
	}
	return 1 << 22
}

func (r *epollReader) run(l *epollLoop) {
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for !r.stop.Load() {
		n, err := unix.EpollWait(l.epfd, events, 100)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			c := r.conns[ev.Fd].Load()
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 && !r.writeRequest(l, c) {
				continue
			}
			if ev.Events&^unix.EPOLLOUT != 0 {
				r.read(l, c, buf)
			}
		}
	}
}

// read drains c's socket into buf (level-triggered: whatever a full buffer
// leaves behind brings the loop back).
func (r *epollReader) read(l *epollLoop, c *conn, buf []byte) {
	for {
		n, err := unix.Read(c.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 || err != nil {
			if err == nil {
				err = errClosedByServer
			}
			r.lost(l, c, err)
			return
		}
		data := buf[:n]
		if d := c.dial; d != nil && !d.upgraded {
			if data, err = d.response(data); err != nil {
				r.lost(l, c, err)
				return
			}
		}
		if len(data) > 0 {
			if err := c.feed(data, time.Now().UnixNano(), l.sh); err != nil {
				r.lost(l, c, err)
				return
			}
		}
		if d := c.dial; d != nil && d.upgraded {
			switch {
			case c.socketID != "":
				// Established: from now on an ordinary connection, unless
				// the dial was given up meanwhile. Then its socket is shut
				// down, and keeping c.dial makes lost drop it without
				// counting it as closed by the server.
				if d.finish(nil) {
					c.dial = nil
				}
			case c.subFailed != nil:
				r.lost(l, c, fmt.Errorf("%s", c.subFailed))
				return
			}
		}
		if n < len(buf) {
			return
		}
	}
}

// lost forgets a connection the server closed (or that broke), or whose
// dial failed, and closes its socket.
func (r *epollReader) lost(l *epollLoop, c *conn, err error) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	r.conns[c.fd].Store(nil)
	if d := c.dial; d != nil {
		c.dial = nil
		d.finish(fmt.Errorf("%w: %v", ErrHandshake, err))
	} else {
		l.sh.closed.Add(1)
	}
	c.close(true)
}

// writeRequest writes what is left of a dialing connection's request once
// its socket is connected, and reports whether c is still being served.
func (r *epollReader) writeRequest(l *epollLoop, c *conn) bool {
	d := c.dial
	if d == nil || len(d.req) == 0 {
		return true
	}
	c.wmu.Lock()
	n, err := unix.Write(c.fd, d.req)
	c.wmu.Unlock()
	if n > 0 {
		d.req = d.req[n:]
	}
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return true
	case err != nil:
		r.lost(l, c, err)
		return false
	case len(d.req) == 0:
		d.req = nil
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
	return true
}

// close stops the loops; the connections stay open for the caller to close.
func (r *epollReader) close() {
	r.once.Do(func() {
		r.stop.Store(true)
		r.wg.Wait()
		for _, l := range r.loops {
			unix.Close(l.epfd)
		}
	})
}

// dupConn duplicates a connection's socket descriptor. The duplicate shares
// the socket and its O_NONBLOCK flag.
func dupConn(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// writeFD writes all of b to a non-blocking socket, waiting for room when
// the kernel buffer is full.
func writeFD(fd int, b []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("write: %w", unix.ETIMEDOUT)
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			unix.Poll(pfd, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
			continue
		}
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// closeFD closes a socket; hard resets it so no TIME_WAIT is left behind.
func closeFD(fd int, hard bool) {
	if hard {
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	unix.Close(fd)
}

// setRecvBuffer shrinks a socket's receive buffer before it connects, so a
// connection that stops reading stalls the server's writes quickly.
func setRecvBuffer(fd uintptr, size int) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
}

// bindAddressNoPort has bind leave the port to connect, which picks one per
// destination: one source address then serves a whole ephemeral port range
// towards each server address.
func bindAddressNoPort(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
}
