package bench

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
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

// errFrameTooLarge is returned for a frame longer than the reader accepts.
var errFrameTooLarge = errors.New("websocket frame too large")

// frame is one WebSocket frame as received; payload aliases the input.
type frame struct {
	fin     bool
	op      byte
	payload []byte
}

// nextFrame parses one frame at the start of b. It returns n == 0 when b does
// not yet hold a whole frame. A masked frame (servers must not send them, but
// a lenient reader copes) is unmasked in place.
func nextFrame(b []byte, maxPayload int) (f frame, n int, err error) {
	if len(b) < 2 {
		return frame{}, 0, nil
	}
	f.fin = b[0]&0x80 != 0
	f.op = b[0] & 0x0F
	masked := b[1]&0x80 != 0
	length := uint64(b[1] & 0x7F)
	hdr := 2
	switch length {
	case 126:
		if len(b) < 4 {
			return frame{}, 0, nil
		}
		length = uint64(binary.BigEndian.Uint16(b[2:4]))
		hdr = 4
	case 127:
		if len(b) < 10 {
			return frame{}, 0, nil
		}
		length = binary.BigEndian.Uint64(b[2:10])
		hdr = 10
	}
	if length > uint64(maxPayload) {
		return frame{}, 0, errFrameTooLarge
	}
	var mask [4]byte
	if masked {
		if len(b) < hdr+4 {
			return frame{}, 0, nil
		}
		copy(mask[:], b[hdr:hdr+4])
		hdr += 4
	}
	end := hdr + int(length)
	if len(b) < end {
		return frame{}, 0, nil
	}
	f.payload = b[hdr:end]
	if masked {
		for i := range f.payload {
			f.payload[i] ^= mask[i&3]
		}
	}
	return f, end, nil
}

// frameLen returns the total length of the frame starting b, or 0 when its
// header is incomplete. Readers use it to size the carry buffer once.
func frameLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	length := int(b[1] & 0x7F)
	hdr := 2
	switch length {
	case 126:
		if len(b) < 4 {
			return 0
		}
		length = int(binary.BigEndian.Uint16(b[2:4]))
		hdr = 4
	case 127:
		if len(b) < 10 {
			return 0
		}
		length = int(binary.BigEndian.Uint64(b[2:10]) & (1<<40 - 1))
		hdr = 10
	}
	if b[1]&0x80 != 0 {
		hdr += 4
	}
	return hdr + length
}

// appendClientFrame appends a complete, masked client frame (clients must
// mask, RFC 6455 §5.3).
func appendClientFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range payload {
		dst[start+i] ^= mask[i&3]
	}
	return dst
}

// closeCode returns the status code of a close frame's payload, 1005 (no
// status) when it has none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(payload))
}
