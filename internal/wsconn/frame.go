package wsconn

import (
	"encoding/binary"
	"unicode/utf8"
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

// AppendText appends payload as one unmasked, final text frame. A server's
// frames are never masked, so the bytes are the same for every receiver:
// a publication is framed once and the frame is shared by all subscribers.
func AppendText(dst, payload []byte) []byte {
	return appendFrame(dst, opText, payload)
}

// TextFrame returns payload framed as a text frame in a new slice.
func TextFrame(payload []byte) []byte {
	return AppendText(make([]byte, 0, len(payload)+10), payload)
}

func appendFrame(dst []byte, op byte, payload []byte) []byte {
	n := len(payload)
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, 0, 0)
		binary.BigEndian.PutUint16(dst[len(dst)-2:], uint16(n))
	default:
		dst = append(dst, 127, 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint64(dst[len(dst)-8:], uint64(n))
	}
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
