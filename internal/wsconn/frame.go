package wsconn

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
	"unsafe"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxHeaderLen is the longest header of an unmasked server frame: two bytes
// and a 64-bit length.
const maxHeaderLen = 10

// outFrame is one entry of a connection's send queue. For a message it is
// the header the transport built and the sender's payload, which is shared
// with every other connection the message goes to and never copied: the
// two leave as separate iovecs of one writev. With hlen zero, the payload
// is bytes of the transport's own that go out as they are: a complete
// control frame (close, pong) or the handshake response.
//
// The payload is held as a pointer and a 32-bit length rather than a slice,
// which keeps the entry, header included, at 24 bytes: the size of a slice
// alone. A burst to many connections queues hundreds of entries on each
// (and the flush copies them once more), so their size is both memory and
// CPU: with a slice beside the header, 40 bytes, a burst to 19,000
// connections took about 30% more CPU per message and half as much memory
// again.
type outFrame struct {
	data *byte  // the payload's first byte; nil if it is empty
	n    uint32 // the payload's length
	hdr  [maxHeaderLen]byte
	hlen uint8
}

// maxPayload is the longest payload an outFrame holds.
const maxPayload = math.MaxUint32

// textFrame queues payload, at most maxPayload bytes, as one final,
// unmasked text frame. A server's frames are never masked, so only the
// length differs between messages and the payload bytes are the same for
// every receiver.
func textFrame(payload []byte) outFrame {
	f := rawFrame(payload)
	f.hlen = uint8(putHeader(&f.hdr, opText, len(payload)))
	return f
}

// rawFrame queues b, already framed, as it is.
func rawFrame(b []byte) outFrame {
	if len(b) == 0 {
		return outFrame{}
	}
	return outFrame{data: unsafe.SliceData(b), n: uint32(len(b))}
}

// payload returns the bytes after the header.
func (f *outFrame) payload() []byte { return unsafe.Slice(f.data, f.n) }

// size is the bytes f puts on the wire, header included.
func (f *outFrame) size() int { return int(f.hlen) + int(f.n) }

// putHeader writes the header of a final, unmasked frame of opcode op and
// an n-byte payload, in the shortest length encoding RFC 6455 §5.2 allows,
// and returns its length.
func putHeader(h *[maxHeaderLen]byte, op byte, n int) int {
	h[0] = 0x80 | op
	switch {
	case n < 126:
		h[1] = byte(n)
		return 2
	case n <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:4], uint16(n))
		return 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:10], uint64(n))
		return 10
	}
}

// appendFrame appends a whole frame: the transport's own control frames,
// which it builds in one piece.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	var h [maxHeaderLen]byte
	n := putHeader(&h, op, len(payload))
	dst = append(dst, h[:n]...)
	return append(dst, payload...)
}

// closeFrame builds a close frame with a status code and a reason, the
// reason cut between characters to fit the 125-byte control frame limit: a
// close reason must be UTF-8, or the client fails the connection itself.
func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		n := 123
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	p = append(p, reason...)
	return appendFrame(nil, opClose, p)
}
