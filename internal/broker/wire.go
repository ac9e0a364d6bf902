package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The cluster wire encoding of a Message: what one node sends another
// through a shared backend. It is versioned, so that nodes of two releases
// can tell each other's messages apart during a rolling upgrade, and
// strict: anything but exactly one well-formed message is refused.
//
//	byte     version (wireVersion)
//	byte     kind
//	byte     flags: 1 DataJSON, 2 Cache; other bits must be zero
//	string   app id, channel, event, data, user id, exclude, in that order
//
// where each string is its length as an unsigned varint and its bytes.
const wireVersion = 1

const (
	flagDataJSON = 1 << iota
	flagCache
	knownFlags = flagDataJSON | flagCache
)

// maxWireKind is the highest Kind the encoding knows.
const maxWireKind = KindUserOffline

// Wire decoding errors.
var (
	ErrWireVersion = errors.New("broker: unknown message encoding version")
	ErrWireFormat  = errors.New("broker: malformed message")
)

// AppendWire appends m's wire encoding to dst.
func AppendWire(dst []byte, m *Message) []byte {
	var flags byte
	if m.DataJSON {
		flags |= flagDataJSON
	}
	if m.Cache {
		flags |= flagCache
	}
	dst = append(dst, wireVersion, byte(m.Kind), flags)
	for _, s := range [...]string{m.AppID, m.Channel, m.Event, m.Data, m.UserID, m.Exclude} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// DecodeWire decodes one message encoded by AppendWire.
func DecodeWire(b []byte) (Message, error) {
	var m Message
	if len(b) < 3 {
		return m, fmt.Errorf("%w: %d bytes", ErrWireFormat, len(b))
	}
	if b[0] != wireVersion {
		return m, fmt.Errorf("%w %d", ErrWireVersion, b[0])
	}
	if Kind(b[1]) > maxWireKind {
		return m, fmt.Errorf("%w: kind %d", ErrWireFormat, b[1])
	}
	if b[2]&^knownFlags != 0 {
		return m, fmt.Errorf("%w: flags %#x", ErrWireFormat, b[2])
	}
	m.Kind = Kind(b[1])
	m.DataJSON = b[2]&flagDataJSON != 0
	m.Cache = b[2]&flagCache != 0
	rest := b[3:]
	for _, dst := range [...]*string{&m.AppID, &m.Channel, &m.Event, &m.Data, &m.UserID, &m.Exclude} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return Message{}, fmt.Errorf("%w: bad string length", ErrWireFormat)
		}
		// A length must be minimally encoded, so that every message has
		// exactly one encoding.
		if k != uvarintLen(n) {
			return Message{}, fmt.Errorf("%w: length not minimally encoded", ErrWireFormat)
		}
		rest = rest[k:]
		*dst = string(rest[:n])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return Message{}, fmt.Errorf("%w: %d bytes after the message", ErrWireFormat, len(rest))
	}
	return m, nil
}

func uvarintLen(n uint64) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}
