package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
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
//	uvarint  number of tags (version 2 only)
//	string   each tag's key then its value, keys strictly ascending
//
// where each string is its length as an unsigned varint and its bytes, and
// every varint is minimally encoded, so that each message has exactly one
// encoding. Version 1 is version 2 without the tags; it is still decoded,
// as a message without tags, for nodes of an earlier release.
const wireVersion = 2

const (
	flagDataJSON = 1 << iota
	flagCache
	knownFlags = flagDataJSON | flagCache
)

// maxWireKind is the highest Kind the encoding knows.
const maxWireKind = KindUnsubscribe

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
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Tags)))
	if len(m.Tags) == 0 {
		return dst
	}
	keys := make([]string, 0, len(m.Tags))
	for k := range m.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = appendString(dst, m.Tags[k])
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeWire decodes one message encoded by AppendWire, of this version or
// version 1.
func DecodeWire(b []byte) (Message, error) {
	var m Message
	if len(b) < 3 {
		return m, fmt.Errorf("%w: %d bytes", ErrWireFormat, len(b))
	}
	version := b[0]
	if version != 1 && version != wireVersion {
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
	d := wireDecoder{rest: b[3:]}
	for _, dst := range [...]*string{&m.AppID, &m.Channel, &m.Event, &m.Data, &m.UserID, &m.Exclude} {
		*dst = d.string()
	}
	if version >= 2 {
		n := d.uvarint()
		// Each tag takes at least two bytes, which bounds the map before
		// anything is allocated.
		if d.err == nil && n > uint64(len(d.rest)/2) {
			d.err = fmt.Errorf("%w: %d tags in %d bytes", ErrWireFormat, n, len(d.rest))
		}
		if d.err == nil && n > 0 {
			m.Tags = make(map[string]string, n)
			prev := ""
			for i := uint64(0); i < n && d.err == nil; i++ {
				k, v := d.string(), d.string()
				if d.err == nil && i > 0 && strings.Compare(prev, k) >= 0 {
					d.err = fmt.Errorf("%w: tag keys not strictly ascending", ErrWireFormat)
				}
				m.Tags[k] = v
				prev = k
			}
		}
	}
	if d.err != nil {
		return Message{}, d.err
	}
	if len(d.rest) != 0 {
		return Message{}, fmt.Errorf("%w: %d bytes after the message", ErrWireFormat, len(d.rest))
	}
	return m, nil
}

// wireDecoder reads varints and strings, remembering the first error.
type wireDecoder struct {
	rest []byte
	err  error
}

func (d *wireDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, k := binary.Uvarint(d.rest)
	if k <= 0 {
		d.err = fmt.Errorf("%w: bad length", ErrWireFormat)
		return 0
	}
	// A length must be minimally encoded, so that every message has
	// exactly one encoding.
	if k != uvarintLen(n) {
		d.err = fmt.Errorf("%w: length not minimally encoded", ErrWireFormat)
		return 0
	}
	d.rest = d.rest[k:]
	return n
}

func (d *wireDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.rest)) {
		d.err = fmt.Errorf("%w: bad string length", ErrWireFormat)
		return ""
	}
	s := string(d.rest[:n])
	d.rest = d.rest[n:]
	return s
}

func uvarintLen(n uint64) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}
