package wsconn

import (
	"encoding/binary"
	"fmt"

	"github.com/gobwas/ws"
)

// header is a parsed client frame header.
type header struct {
	fin    bool
	rsv    byte
	op     byte
	masked bool
	mask   [4]byte
	length int64
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
		if v > 1<<62 {
			v = 1 << 62 // absurd; the size limit discards it
		}
		h.length = int64(v)
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
	message(data []byte)
	tooLarge(size int)
	control(op byte, payload []byte)
}

// frameReader turns a stream of client bytes, fed in arbitrary pieces, into
// messages. It keeps no buffer between reads unless a frame straddles them,
// so an idle connection costs nothing here.
type frameReader struct {
	max        int
	carry      []byte // bytes of an incomplete frame from earlier reads
	msg        []byte // fragments of the current message
	inMessage  bool   // a fragmented message is in progress
	discarding bool   // the current message is over max and being skipped
	discarded  int
	skip       int64 // payload bytes of the current frame still to skip
	skipFin    bool  // the frame being skipped ends its message
}

// feed consumes data. data may be modified (unmasked in place) and is not
// retained; payloads passed to sink are only valid during the call. A
// protocol violation returns an error wrapping errProtocol.
func (r *frameReader) feed(data []byte, sink frameSink) error {
	buf := data
	if len(r.carry) > 0 {
		r.carry = append(r.carry, data...)
		buf = r.carry
	}
	for len(buf) > 0 {
		if r.skip > 0 {
			k := int64(len(buf))
			if k > r.skip {
				k = r.skip
			}
			buf = buf[k:]
			r.skip -= k
			if r.skip == 0 && r.skipFin {
				r.endDiscard(sink)
			}
			continue
		}
		h, n, ok := parseHeader(buf)
		if !ok {
			break
		}
		if err := r.check(h); err != nil {
			return err
		}
		if h.op >= 0x8 { // control frame: always small, handled whole
			if int64(len(buf)-n) < h.length {
				break
			}
			p := buf[n : n+int(h.length)]
			ws.Cipher(p, h.mask, 0)
			buf = buf[n+int(h.length):]
			sink.control(h.op, p)
			continue
		}
		starts := h.op != opContinuation // a text or binary frame opens a message
		msgLen := len(r.msg)
		if starts {
			msgLen = 0
		}
		if (r.discarding && !starts) || int64(msgLen)+h.length > int64(r.max) {
			if starts {
				r.inMessage, r.msg, r.discarding, r.discarded = true, r.msg[:0], false, 0
			}
			if !r.discarding {
				r.discarding = true
				r.discarded = len(r.msg)
				r.msg = nil
			}
			r.discarded += int(min(h.length, 1<<30))
			buf = buf[n:]
			r.skip, r.skipFin = h.length, h.fin
			if r.skip == 0 && h.fin {
				r.endDiscard(sink)
			}
			continue
		}
		if int64(len(buf)-n) < h.length {
			break // wait for the rest of the frame; no state has changed
		}
		if starts {
			r.inMessage, r.msg, r.discarding, r.discarded = true, r.msg[:0], false, 0
		}
		p := buf[n : n+int(h.length)]
		ws.Cipher(p, h.mask, 0)
		buf = buf[n+int(h.length):]
		if h.fin && len(r.msg) == 0 {
			// The common case: a whole message in one frame, passed on
			// without a copy.
			r.inMessage = false
			sink.message(p)
			continue
		}
		r.msg = append(r.msg, p...)
		if h.fin {
			r.inMessage = false
			sink.message(r.msg)
			r.msg = r.msg[:0]
			if cap(r.msg) > 4096 {
				r.msg = nil
			}
		}
	}
	// Keep an incomplete frame for the next read, in a buffer of its own:
	// data belongs to the caller.
	if len(buf) == 0 {
		r.carry = nil
	} else {
		r.carry = append([]byte(nil), buf...)
	}
	return nil
}

func (r *frameReader) endDiscard(sink frameSink) {
	size := r.discarded
	r.inMessage, r.discarding, r.discarded, r.skipFin = false, false, 0, false
	r.msg = nil
	sink.tooLarge(size)
}

// check enforces RFC 6455 on a client frame header.
func (r *frameReader) check(h header) error {
	switch {
	case !h.masked:
		return fmt.Errorf("%w: unmasked client frame", errProtocol)
	case h.rsv != 0:
		return fmt.Errorf("%w: reserved bits set without an extension", errProtocol)
	case h.op >= 0x8:
		if h.op != opClose && h.op != opPing && h.op != opPong {
			return fmt.Errorf("%w: unknown control opcode %d", errProtocol, h.op)
		}
		if !h.fin || h.length > 125 {
			return fmt.Errorf("%w: fragmented or long control frame", errProtocol)
		}
	case h.op == opContinuation:
		if !r.inMessage {
			return fmt.Errorf("%w: continuation without a message", errProtocol)
		}
	case h.op == opText || h.op == opBinary:
		if r.inMessage {
			return fmt.Errorf("%w: new message inside a fragmented one", errProtocol)
		}
	default:
		return fmt.Errorf("%w: unknown opcode %d", errProtocol, h.op)
	}
	return nil
}
