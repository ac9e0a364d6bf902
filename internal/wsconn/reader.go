package wsconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/heraldhq/herald/internal/transport"
)

// Client frame errors. Each fails the connection with the close code
// CloseCodeFor gives it; HandleClose receives them wrapped with detail.
var (
	// ErrProtocol is a client frame that breaks RFC 6455 (close 1002).
	ErrProtocol = fmt.Errorf("wsconn: protocol error (%w)", transport.ErrViolation)
	// ErrInvalidUTF8 is a text message or close reason that is not valid
	// UTF-8 (close 1007, RFC 6455 §8.1).
	ErrInvalidUTF8 = fmt.Errorf("wsconn: invalid UTF-8 (%w)", transport.ErrViolation)
	// ErrTooLarge is a message declared longer than MaxMessageBytes
	// (close 1009).
	ErrTooLarge = fmt.Errorf("wsconn: message too large (%w)", transport.ErrViolation)
)

// violation is a client's breach of the protocol: one of the errors above
// and what exactly was wrong.
type violation struct {
	err    error
	detail string
}

func (v *violation) Error() string { return v.err.Error() + ": " + v.detail }
func (v *violation) Unwrap() error { return v.err }

func violate(err error, format string, args ...any) error {
	return &violation{err: err, detail: fmt.Sprintf(format, args...)}
}

// CloseCodeFor returns the close code and reason a connection is failed
// with for a client error from the frame reader.
func CloseCodeFor(err error) (code int, reason string) {
	switch {
	case errors.Is(err, ErrInvalidUTF8):
		return CloseInvalidPayload, "invalid UTF-8"
	case errors.Is(err, ErrTooLarge):
		return CloseTooBig, "message too big"
	default:
		return CloseProtocolError, "protocol error"
	}
}

// validCloseCode reports whether a client may send code in a close frame,
// which Herald then echoes: the codes RFC 6455 §7.4.1 defines for use on
// the wire and the registered and private ranges. 1005, 1006 and 1015 are
// never sent; 1004 and the rest below 3000 are reserved.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}

// header is a parsed client frame header.
type header struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	mask    [4]byte
	length  int64
	badSize bool // a 64-bit length with its most significant bit set
}

// parseHeader parses the frame header at the start of b. ok is false when b
// does not yet hold the whole header.
func parseHeader(b []byte) (h header, n int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = (b[0] >> 4) & 0x7
	h.op = b[0] & 0x0f
	h.masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		v := binary.BigEndian.Uint64(b[2:10])
		h.badSize = v>>63 != 0
		h.length = int64(v &^ (1 << 63))
		n = 10
	default:
		h.length = int64(l)
	}
	if h.masked {
		if len(b) < n+4 {
			return h, 0, false
		}
		copy(h.mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true
}

// frameSink receives what a frameReader decodes.
type frameSink interface {
	// message is one complete message; a text message is valid UTF-8.
	message(data []byte)
	// ping is a client ping, to be answered with a pong.
	ping(payload []byte)
	// peerClose is the client's valid close frame; code is the one to
	// echo (1000 when the client sent none). Nothing follows it.
	peerClose(code int)
}

// frameReader turns a stream of client bytes, fed in arbitrary pieces, into
// messages, and enforces RFC 6455 on it: a violation fails the connection
// at once, so nothing after it is processed. It keeps no buffer between
// reads unless a frame straddles them, so an idle connection costs nothing
// here; what it does hold is bounded by max (one message, plus one frame
// header).
//
// It is part of every connection's state, so it is 16 bytes: its buffers,
// which an idle connection does not have, sit behind a pointer; the count
// is 32-bit (a message is at most the limit, which is at most
// math.MaxInt32) and the flags share its word; the limit, the same for
// every connection of a transport, is the caller's to pass. The zero
// frameReader is ready.
type frameReader struct {
	bufs      *readBufs // nil while it holds neither
	checked   int32     // bytes of msg known to be whole, valid UTF-8 sequences
	inMessage bool      // a fragmented message is in progress
	text      bool      // and it is a text message
	done      bool      // a close frame or a violation ended the stream
}

// readBufs are the bytes a frameReader holds between reads.
type readBufs struct {
	carry []byte // bytes of an incomplete frame from earlier reads
	msg   []byte // fragments of the current message
}

// carry is the incomplete frame held from earlier reads.
func (r *frameReader) carry() []byte {
	if r.bufs == nil {
		return nil
	}
	return r.bufs.carry
}

// msg is the fragments of the current message (or an empty buffer kept for
// the next one).
func (r *frameReader) msg() []byte {
	if r.bufs == nil {
		return nil
	}
	return r.bufs.msg
}

// buffers returns r.bufs, making it if need be.
func (r *frameReader) buffers() *readBufs {
	if r.bufs == nil {
		r.bufs = &readBufs{}
	}
	return r.bufs
}

// setCarry keeps b as the incomplete frame, dropping the buffers once
// neither holds anything.
func (r *frameReader) setCarry(b []byte) {
	if b == nil && r.bufs != nil && r.bufs.msg == nil {
		r.bufs = nil
		return
	}
	if b != nil || r.bufs != nil {
		r.buffers().carry = b
	}
}

// readLimit is a frameReader's limit for a configured message limit: one
// beyond math.MaxInt32 is taken as that, more than any client message
// could sensibly be, never wrapped to a small or negative one.
func readLimit(limit int) int32 { return int32(min(limit, math.MaxInt32)) }

// feed consumes data, of messages at most max bytes (see readLimit). data
// may be modified (unmasked in place) and is not retained; payloads passed
// to sink are only valid during the call. A client error returns one of
// ErrProtocol, ErrInvalidUTF8 or ErrTooLarge, wrapped; after it, and after
// the client's close frame, feed ignores whatever else arrives.
func (r *frameReader) feed(data []byte, max int32, sink frameSink) error {
	if r.done {
		return nil
	}
	buf := data
	carried := len(r.carry()) > 0
	if carried {
		r.bufs.carry = append(r.bufs.carry, data...)
		buf = r.bufs.carry
	}
	for len(buf) > 0 && !r.done {
		h, n, ok := parseHeader(buf)
		if !ok {
			break
		}
		if err := r.check(h); err != nil {
			return r.fail(err)
		}
		if h.op < 0x8 {
			size := h.length
			if h.op == opContinuation {
				size += int64(len(r.msg()))
			}
			if size > int64(max) {
				return r.fail(violate(ErrTooLarge, "message of at least %d bytes, at most %d allowed", size, max))
			}
		}
		if int64(len(buf)-n) < h.length {
			break // wait for the rest of the frame; no state has changed
		}
		p := buf[n : n+int(h.length)]
		ws.Cipher(p, h.mask, 0)
		buf = buf[n+int(h.length):]
		var err error
		if h.op >= 0x8 {
			err = r.control(h.op, p, sink)
		} else {
			err = r.data(h, p, sink)
		}
		if err != nil {
			return r.fail(err)
		}
	}
	// Keep an incomplete frame for the next read. data belongs to the
	// caller, so the first piece is copied; later pieces are appended, the
	// buffer growing with what has arrived, never with what a header
	// merely declares (14 bytes must not make Herald hold 64 KiB). A carry
	// is only moved when a frame in it was consumed, so a frame trickled in
	// byte by byte costs amortized linear time, not quadratic.
	switch {
	case len(buf) == 0 || r.done:
		r.setCarry(nil)
	case !carried:
		r.setCarry(append([]byte(nil), buf...))
	case len(buf) < len(r.bufs.carry):
		r.bufs.carry = r.bufs.carry[:copy(r.bufs.carry, buf)]
	}
	return nil
}

// data handles a text, binary or continuation frame whose payload p is
// unmasked.
func (r *frameReader) data(h header, p []byte, sink frameSink) error {
	if h.op != opContinuation {
		r.inMessage, r.text, r.checked = true, h.op == opText, 0
		if r.bufs != nil {
			r.bufs.msg = r.bufs.msg[:0]
		}
		if h.fin {
			// The common case: a whole message in one frame, checked and
			// passed on without a copy.
			r.inMessage = false
			if r.text && !utf8.Valid(p) {
				return violate(ErrInvalidUTF8, "text message")
			}
			sink.message(p)
			return nil
		}
	}
	bufs := r.buffers()
	bufs.msg = append(bufs.msg, p...)
	if r.text {
		// Checked fragment by fragment, so an invalid message fails as soon
		// as its bad bytes arrive; a character may straddle fragments.
		n, ok := validPrefix(bufs.msg[r.checked:])
		if !ok || (h.fin && int(r.checked)+n != len(bufs.msg)) {
			return violate(ErrInvalidUTF8, "text message")
		}
		r.checked += int32(n)
	}
	if !h.fin {
		return nil
	}
	r.inMessage = false
	sink.message(bufs.msg)
	bufs.msg = bufs.msg[:0]
	if cap(bufs.msg) > 4096 {
		bufs.msg = nil // do not pin a large buffer to an idle connection
		r.setCarry(bufs.carry)
	}
	return nil
}

// control handles a control frame whose payload p is unmasked.
func (r *frameReader) control(op byte, p []byte, sink frameSink) error {
	switch op {
	case opPing:
		sink.ping(p)
	case opClose:
		code := CloseNormal
		switch {
		case len(p) == 1:
			return violate(ErrProtocol, "close frame with a one-byte payload")
		case len(p) >= 2:
			code = int(binary.BigEndian.Uint16(p))
			if !validCloseCode(code) {
				return violate(ErrProtocol, "close code %d", code)
			}
			if !utf8.Valid(p[2:]) {
				return violate(ErrInvalidUTF8, "close reason")
			}
		}
		r.end()
		sink.peerClose(code)
	}
	// A pong needs nothing: the read itself shows the client is alive.
	return nil
}

// fail ends the stream on a client error.
func (r *frameReader) fail(err error) error {
	r.end()
	return err
}

func (r *frameReader) end() {
	r.done = true
	r.bufs, r.inMessage = nil, false
}

// check enforces RFC 6455 on a client frame header.
func (r *frameReader) check(h header) error {
	switch {
	case !h.masked:
		return violate(ErrProtocol, "unmasked client frame")
	case h.rsv != 0:
		return violate(ErrProtocol, "reserved bits set without an extension")
	case h.badSize:
		return violate(ErrProtocol, "64-bit length with its top bit set")
	case h.op >= 0x8:
		if h.op != opClose && h.op != opPing && h.op != opPong {
			return violate(ErrProtocol, "unknown control opcode %d", h.op)
		}
		if !h.fin || h.length > 125 {
			return violate(ErrProtocol, "fragmented or long control frame")
		}
	case h.op == opContinuation:
		if !r.inMessage {
			return violate(ErrProtocol, "continuation without a message")
		}
	case h.op == opText || h.op == opBinary:
		if r.inMessage {
			return violate(ErrProtocol, "new message inside a fragmented one")
		}
	default:
		return violate(ErrProtocol, "unknown opcode %d", h.op)
	}
	return nil
}

// validPrefix checks b, the unchecked part of a text message that may end
// inside a character: it returns the length of b's longest prefix made of
// whole characters, and whether b is valid UTF-8 so far, that is, the
// prefix is valid and what follows it (at most three bytes) can still
// begin a valid character.
func validPrefix(b []byte) (int, bool) {
	if utf8.Valid(b) {
		return len(b), true
	}
	// Find where the last character begins: at most three continuation
	// bytes (10xxxxxx) back from the end.
	i := len(b) - 1
	for i > 0 && i > len(b)-4 && b[i]&0xC0 == 0x80 {
		i--
	}
	if !utf8.Valid(b[:i]) || !startsRune(b[i:]) {
		return 0, false
	}
	return i, true
}

// startsRune reports whether p, one to three bytes, is the beginning of a
// valid UTF-8 encoding of some character that needs more bytes than p.
func startsRune(p []byte) bool {
	need := 0
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 2
	case c == 0xE0:
		need, lo = 3, 0xA0 // no overlong forms
	case c == 0xED:
		need, hi = 3, 0x9F // no surrogates
	case c >= 0xE1 && c <= 0xEF:
		need = 3
	case c == 0xF0:
		need, lo = 4, 0x90 // no overlong forms
	case c >= 0xF1 && c <= 0xF3:
		need = 4
	case c == 0xF4:
		need, hi = 4, 0x8F // nothing above U+10FFFF
	default:
		return false
	}
	if len(p) >= need {
		return false // whole, and utf8.Valid refused it
	}
	if len(p) > 1 && (p[1] < lo || p[1] > hi) {
		return false
	}
	for _, c := range p[min(2, len(p)):] {
		if c&0xC0 != 0x80 {
			return false
		}
	}
	return true
}
