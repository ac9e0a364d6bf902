//go:build linux

package bench

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

const floorSupported = true

// The floor server is the least a Pusher WebSocket server can do per
// connection on Linux, as a yardstick for Herald's connection figures
// rather than as a server. It is built the way Herald's epoll transport is:
// a goroutine waits on the listener through the Go runtime's poller and
// accepts with accept4 (the listener defers accepting until the request
// has arrived), reads the upgrade request, writes the 101 and
// pusher:connection_established in one write and hands the socket to an
// epoll loop with one epoll_ctl; the loop reads the EOF at the end and
// closes. It checks nothing but the Sec-WebSocket-Key it must answer,
// keeps no state for an idle connection beyond a word in a table, answers
// pusher:ping and pusher:subscribe (any channel, no authorization) and
// ignores everything else. Its CPU and memory per connection are what the
// kernel, the runtime and a minimal epoll loop cost; what a real server
// spends above them is its own.

// floorLoopEvents is how many epoll events a loop takes per wait.
const floorLoopEvents = 256

// floorAcceptBatch bounds the accepts of one listener wake-up.
const floorAcceptBatch = 64

// fd states in floorServer.state.
const (
	floorFree     uint32 = iota
	floorHead            // accepted, upgrade request not complete yet
	floorUpgraded        // WebSocket frames
)

type floorServer struct {
	addr  string // where it listens, port 0 resolved
	lfd   int
	lfile *os.File // lfd, for the runtime's poller
	loops []*floorLoop
	next  int           // the loop the next connection goes to (acceptor's)
	ids   atomic.Uint64 // socket ids
	// state is by fd, sized for the descriptor limit so that it never
	// grows under the loops (pages never touched cost no memory).
	state []atomic.Uint32
	wg    sync.WaitGroup

	mu    sync.Mutex
	carry map[int32][]byte // by fd: an incomplete request head or frame
}

type floorLoop struct {
	s    *floorServer
	epfd int
	buf  []byte
	out  []byte
}

// startFloor listens on addr with loops epoll loops; the server runs until
// ctx is done, and Wait returns after it has stopped.
func startFloor(ctx context.Context, addr string, loops int) (*floorServer, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: want ip:port: %w", addr, err)
	}
	if !ap.Addr().Is4() {
		return nil, fmt.Errorf("--addr %q: want an IPv4 address", addr)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("getrlimit: %w", err)
	}
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	s := &floorServer{
		lfd:   lfd,
		state: make([]atomic.Uint32, min(lim.Cur, 1<<22)),
		carry: map[int32][]byte{},
	}
	fail := func(what string, err error) (*floorServer, error) {
		s.closeFDs()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("SO_REUSEADDR", err)
	}
	// Accepted sockets inherit TCP_NODELAY from the listener; with
	// TCP_DEFER_ACCEPT, accept4 returns once the request is readable.
	if err := unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail("TCP_NODELAY", err)
	}
	if err := unix.SetsockoptInt(lfd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1); err != nil {
		return fail("TCP_DEFER_ACCEPT", err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return fail("bind "+addr, err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return fail("listen", err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return fail("getsockname", err)
	}
	s.addr = netip.AddrPortFrom(ap.Addr(), uint16(sa.(*unix.SockaddrInet4).Port)).String()
	for range max(loops, 1) {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fail("epoll_create1", err)
		}
		s.loops = append(s.loops, &floorLoop{s: s, epfd: epfd, buf: make([]byte, 64<<10)})
	}
	// A non-blocking descriptor in an os.File is waited on by the runtime.
	s.lfile = os.NewFile(uintptr(lfd), "floor listener")
	rc, err := s.lfile.SyscallConn()
	if err != nil {
		return fail("listener", err)
	}
	stopped := make(chan struct{})
	s.wg.Add(1 + len(s.loops))
	go func() {
		defer s.wg.Done()
		s.acceptLoop(rc, stopped)
	}()
	for _, l := range s.loops {
		go func() {
			defer s.wg.Done()
			l.run(stopped)
		}()
	}
	go func() {
		<-ctx.Done()
		close(stopped)
		s.lfile.Close() // wakes the acceptor
	}()
	go func() {
		s.wg.Wait()
		for _, l := range s.loops {
			unix.Close(l.epfd)
		}
		for fd := range s.state {
			if s.state[fd].Load() != floorFree {
				unix.Close(fd)
			}
		}
	}()
	return s, nil
}

func (s *floorServer) closeFDs() {
	if s.lfile != nil {
		s.lfile.Close()
	} else {
		unix.Close(s.lfd)
	}
	for _, l := range s.loops {
		unix.Close(l.epfd)
	}
}

// Wait returns once the server has stopped.
func (s *floorServer) Wait() { s.wg.Wait() }

// Addr is the address the server listens on.
func (s *floorServer) Addr() string { return s.addr }

func (s *floorServer) acceptLoop(rc syscall.RawConn, stopped <-chan struct{}) {
	fds := make([]int, 0, floorAcceptBatch)
	// The acceptor has buffers of its own: it writes no loop's.
	a := &floorLoop{s: s, buf: make([]byte, 16<<10)}
	for {
		fds = fds[:0]
		err := rc.Read(func(lfd uintptr) bool {
			for len(fds) < floorAcceptBatch {
				fd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, lfd, 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
				switch errno {
				case 0:
					fds = append(fds, int(fd))
					continue
				case unix.EINTR, unix.ECONNABORTED:
					continue
				}
				return len(fds) > 0 || errno != unix.EAGAIN
			}
			return true
		})
		for _, fd := range fds {
			a.accepted(fd)
		}
		if err != nil {
			return // the listener was closed
		}
		select {
		case <-stopped:
			return
		default:
		}
	}
}

// accepted serves a new socket on the acceptor: the request head is
// usually there already, so the handshake is answered before the socket
// goes to a loop.
func (a *floorLoop) accepted(fd int) {
	s := a.s
	if fd >= len(s.state) {
		unix.Close(fd)
		return
	}
	s.state[fd].Store(floorHead)
	n, err := unix.Read(fd, a.buf)
	switch {
	case err == nil && n > 0:
		rest, ok := a.serve(fd, a.buf[:n])
		if !ok {
			a.drop(fd)
			return
		}
		if len(rest) > 0 {
			s.mu.Lock()
			s.carry[int32(fd)] = bytes.Clone(rest)
			s.mu.Unlock()
		}
	case err != unix.EAGAIN:
		a.drop(fd)
		return
	}
	l := s.loops[s.next%len(s.loops)]
	s.next++
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		a.drop(fd)
	}
}

func (l *floorLoop) run(stopped <-chan struct{}) {
	events := make([]unix.EpollEvent, floorLoopEvents)
	for {
		// A timeout, not an eventfd, ends the wait to look at stopped:
		// five wake-ups a second are nothing against the connections'.
		n, err := unix.EpollWait(l.epfd, events, 200)
		select {
		case <-stopped:
			return
		default:
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			l.readable(int(events[i].Fd))
		}
	}
}

// drop closes fd, which also takes it out of epoll: the server holds the
// only reference to the socket.
func (l *floorLoop) drop(fd int) {
	l.s.state[fd].Store(floorFree)
	l.s.mu.Lock()
	delete(l.s.carry, int32(fd))
	l.s.mu.Unlock()
	unix.Close(fd)
}

func (l *floorLoop) readable(fd int) {
	s := l.s
	if fd >= len(s.state) || s.state[fd].Load() == floorFree {
		return
	}
	n, err := unix.Read(fd, l.buf)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return
		}
		l.drop(fd)
		return
	}
	if n == 0 {
		l.drop(fd)
		return
	}
	data := l.buf[:n]
	s.mu.Lock()
	c, ok := s.carry[int32(fd)]
	if ok {
		delete(s.carry, int32(fd))
	}
	s.mu.Unlock()
	if ok {
		data = append(c, data...)
	}
	rest, ok := l.serve(fd, data)
	if !ok {
		l.drop(fd)
		return
	}
	if len(rest) > 0 {
		if len(rest) > 16<<10 {
			l.drop(fd) // a head or frame the floor will not buffer
			return
		}
		s.mu.Lock()
		s.carry[int32(fd)] = bytes.Clone(rest)
		s.mu.Unlock()
	}
}

// serve handles what was read from fd and returns the incomplete rest, or
// false if the connection is to be closed.
func (l *floorLoop) serve(fd int, data []byte) ([]byte, bool) {
	if l.s.state[fd].Load() == floorHead {
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			return data, true
		}
		key := headerValue(data[:end], "sec-websocket-key")
		if key == nil {
			return nil, false
		}
		if !l.write(fd, l.handshake(key)) {
			return nil, false
		}
		l.s.state[fd].Store(floorUpgraded)
		data = data[end+4:]
	}
	for len(data) > 0 {
		op, payload, n := clientFrame(data)
		if n == 0 {
			return data, true
		}
		data = data[n:]
		switch op {
		case 0x8: // close: answer it and go
			l.write(fd, []byte{0x88, 0})
			return nil, false
		case 0x9: // ping
			l.out = serverFrame(l.out[:0], 0xA, payload)
			if !l.write(fd, l.out) {
				return nil, false
			}
		case 0x1:
			if reply := l.answer(payload); reply != nil && !l.write(fd, reply) {
				return nil, false
			}
		}
	}
	return nil, true
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// handshake builds the 101 and pusher:connection_established in l.out.
func (l *floorLoop) handshake(key []byte) []byte {
	h := sha1.New()
	h.Write(key)
	h.Write([]byte(wsGUID))
	var sum [sha1.Size]byte
	out := append(l.out[:0], "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	out = base64.StdEncoding.AppendEncode(out, h.Sum(sum[:0]))
	out = append(out, "\r\n\r\n"...)
	var msg [128]byte
	m := append(msg[:0], `{"event":"pusher:connection_established","data":"{\"socket_id\":\"`...)
	id := l.s.ids.Add(1)
	m = strconv.AppendUint(m, id/1000000+1, 10)
	m = append(m, '.')
	m = strconv.AppendUint(m, id%1000000, 10)
	m = append(m, `\",\"activity_timeout\":120}"}`...)
	out = serverFrame(out, 0x1, m)
	l.out = out
	return out
}

// answer returns the reply to a client event, or nil.
func (l *floorLoop) answer(payload []byte) []byte {
	switch {
	case bytes.Contains(payload, []byte(`"pusher:ping"`)):
		l.out = serverFrame(l.out[:0], 0x1, pongMessage)
	case bytes.Contains(payload, []byte(`"pusher:subscribe"`)):
		ch := jsonStringField(payload, `"channel"`)
		if ch == nil {
			return nil
		}
		var msg []byte
		msg = append(msg, `{"event":"pusher_internal:subscription_succeeded","channel":"`...)
		msg = append(msg, ch...)
		msg = append(msg, `","data":"{}"}`...)
		l.out = serverFrame(l.out[:0], 0x1, msg)
	default:
		return nil
	}
	return l.out
}

// write writes b to fd whole; a socket whose buffer is full is given up,
// which a floor that never queues can afford.
func (l *floorLoop) write(fd int, b []byte) bool {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return false
		}
		b = b[n:]
	}
	return true
}

// headerValue returns the value of header name (lower case) in an HTTP
// head, or nil.
func headerValue(head []byte, name string) []byte {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// jsonStringField returns the simple string value of key in a flat JSON
// object (no escapes), or nil.
func jsonStringField(obj []byte, key string) []byte {
	i := bytes.Index(obj, []byte(key))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(obj[i+len(key):], " :")
	if len(rest) == 0 || rest[0] != '"' {
		return nil
	}
	end := bytes.IndexAny(rest[1:], `"\`)
	if end < 0 || rest[1+end] != '"' {
		return nil
	}
	return rest[1 : 1+end]
}

// clientFrame decodes one masked client frame at the start of data,
// unmasking its payload in place; n is 0 while the frame is incomplete.
func clientFrame(data []byte) (op byte, payload []byte, n int) {
	if len(data) < 2 {
		return 0, nil, 0
	}
	op = data[0] & 0x0F
	size := uint64(data[1] & 0x7F)
	off := 2
	switch size {
	case 126:
		if len(data) < 4 {
			return 0, nil, 0
		}
		size, off = uint64(binary.BigEndian.Uint16(data[2:])), 4
	case 127:
		if len(data) < 10 {
			return 0, nil, 0
		}
		size, off = binary.BigEndian.Uint64(data[2:]), 10
	}
	masked := data[1]&0x80 != 0
	if masked {
		off += 4
	}
	if len(data) < off || uint64(len(data)-off) < size { // no overflow for a huge size
		return 0, nil, 0
	}
	payload = data[off : off+int(size)]
	if masked {
		mask := data[off-4 : off]
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
	}
	return op, payload, off + int(size)
}

// serverFrame appends an unmasked final frame of opcode op to dst.
func serverFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}
