package httpapi

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// The publish bodies SDKs send are read here in one pass, without
// reflection: an object of the event fields, each once, every value a
// string (data a JSON-encoded one) or, for channels, an array of strings.
// Whatever else a body holds (other keys, keys in other letter cases,
// nulls, numbers, data as a JSON object, \u escapes, a key given twice,
// anything malformed) makes the fast reading give up, and the body goes to
// encoding/json, whose reading is the reference: the fast one, where it
// answers, gives the same eventBody (FuzzDecodeEvent holds it to that).

// decodeEventFast decodes body, one event, into b and reports whether it
// could; on false b is to be discarded.
func decodeEventFast(body []byte, b *eventBody) bool {
	d := jsonScanner{b: body}
	if !d.event(b) {
		return false
	}
	d.space()
	return d.i == len(d.b)
}

// decodeBatchFast decodes body, {"batch":[...]}, and reports whether it
// could; on false the result is to be discarded. n is the number of events
// in the batch, but only the first max of them are kept: the others are
// read, for the count the refusal gives, into one event that is reused, so
// that an over-long batch costs no more than its body.
func decodeBatchFast(body []byte, max int) (batch []eventBody, n int, ok bool) {
	d := jsonScanner{b: body}
	if !d.byte('{') {
		return nil, 0, false
	}
	key, ok := d.key()
	if !ok || string(key) != "batch" || !d.byte(':') || !d.byte('[') {
		return nil, 0, false
	}
	// Room for the batch SDKs send most (Pusher's limit is 10) in one
	// allocation; appends beyond it grow the array as usual.
	batch = make([]eventBody, 0, min(max, batchRoom))
	if !d.byte(']') {
		var spare eventBody
		for {
			ev := &spare
			if n < max {
				batch = append(batch, eventBody{})
				ev = &batch[len(batch)-1]
			} else {
				spare = eventBody{}
			}
			if !d.event(ev) {
				return nil, 0, false
			}
			n++
			if d.byte(']') {
				break
			}
			if !d.byte(',') {
				return nil, 0, false
			}
		}
	}
	if !d.byte('}') {
		return nil, 0, false
	}
	d.space()
	return batch, n, d.i == len(d.b)
}

// batchRoom is the batch length decodeBatchFast makes room for at once.
const batchRoom = 10

// batchLen is the number of elements encoding/json finds in a batch
// body's array, counted without decoding them: elements of no size take no
// memory, however many there are. ok is false for a body that
// encoding/json refuses, or whose batch is no array.
func batchLen(body []byte) (n int, ok bool) {
	var count struct {
		Batch []skipped `json:"batch"`
	}
	if json.Unmarshal(body, &count) != nil {
		return 0, false
	}
	return len(count.Batch), true
}

// skipped takes any JSON value and keeps nothing of it.
type skipped struct{}

func (*skipped) UnmarshalJSON([]byte) error { return nil }

// jsonScanner reads the subset of JSON the fast decoders take.
type jsonScanner struct {
	b []byte
	i int
}

// space skips JSON whitespace.
func (d *jsonScanner) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte skips whitespace and then c, if c is next.
func (d *jsonScanner) byte(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// Fields of eventBody, as bits of the set of those read.
const (
	fieldName = 1 << iota
	fieldData
	fieldChannel
	fieldChannels
	fieldSocketID
	fieldInfo
)

// event reads one event object into b.
func (d *jsonScanner) event(b *eventBody) bool {
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return true
	}
	seen := 0
	for {
		key, ok := d.key()
		if !ok || !d.byte(':') {
			return false
		}
		var field int
		switch string(key) {
		case "name":
			field = fieldName
			b.Name, ok = d.string()
		case "data":
			field = fieldData
			b.data, ok = d.string()
			b.dataSet = true
		case "channel":
			field = fieldChannel
			b.Channel, ok = d.string()
		case "channels":
			field = fieldChannels
			b.Channels, b.channelsOver, ok = d.strings(MaxTriggerChannels)
		case "socket_id":
			field = fieldSocketID
			b.SocketID, ok = d.string()
		case "info":
			field = fieldInfo
			b.Info, ok = d.string()
		default:
			return false
		}
		if !ok || seen&field != 0 {
			return false
		}
		seen |= field
		if d.byte('}') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

// strings reads an array of strings: never nil, as encoding/json makes
// an empty array. Only the first keep are kept; over counts the others,
// read and checked as the kept ones are, so that a list far over the
// limit costs no more than its body.
func (d *jsonScanner) strings(keep int) (out []string, over int, ok bool) {
	if !d.byte('[') {
		return nil, 0, false
	}
	out = []string{}
	if d.byte(']') {
		return out, 0, true
	}
	for {
		if len(out) < keep {
			s, ok := d.string()
			if !ok {
				return nil, 0, false
			}
			out = append(out, s)
		} else {
			if !d.skipString() {
				return nil, 0, false
			}
			over++
		}
		if d.byte(']') {
			return out, over, true
		}
		if !d.byte(',') {
			return nil, 0, false
		}
	}
}

// key reads an object key, as its raw bytes: no key the fast decoders
// know holds an escape or a byte beyond ASCII, so one that does is given
// up on, as the unknown key it would decode to. Keys are only compared,
// never kept, so reading them allocates nothing.
func (d *jsonScanner) key() ([]byte, bool) {
	raw, escapes, ok := d.rawString()
	return raw, ok && !escapes
}

// string reads a string whose escapes, if any, are the two-character ones
// and whose bytes are valid UTF-8 with no control characters: what
// encoding/json returns for it unchanged but for those escapes. A \u
// escape, invalid UTF-8 (which encoding/json replaces) or a malformed
// string make it give up.
func (d *jsonScanner) string() (string, bool) {
	raw, escapes, ok := d.rawString()
	switch {
	case !ok:
		return "", false
	case !escapes:
		return string(raw), true
	}
	return unescape(raw)
}

// skipString reads a string as string does, giving up where it would,
// and keeps nothing of it.
func (d *jsonScanner) skipString() bool {
	raw, escapes, ok := d.rawString()
	return ok && (!escapes || validEscapes(raw))
}

// rawString reads a string up to its closing quote and returns its
// content as it lies in the body, and whether it holds escapes. It gives
// up on control characters and invalid UTF-8.
func (d *jsonScanner) rawString() (raw []byte, escapes, ok bool) {
	if !d.byte('"') {
		return nil, false, false
	}
	start := d.i
	wide := false
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if wide && !utf8.Valid(raw) {
				return nil, false, false
			}
			return raw, escapes, true
		case c == '\\':
			escapes = true
			d.i++ // the escaped byte is not the string's end
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			wide = true
		}
	}
	return nil, false, false
}

// validEscapes reports whether unescape takes raw.
func validEscapes(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i++; i == len(raw) {
			return false
		}
		switch raw[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		default:
			return false
		}
	}
	return true
}

// unescape decodes the two-character escapes of raw, a string's content.
func unescape(raw []byte) (string, bool) {
	var s strings.Builder
	s.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			s.WriteByte(c)
			continue
		}
		if i++; i == len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\', '/':
			s.WriteByte(raw[i])
		case 'b':
			s.WriteByte('\b')
		case 'f':
			s.WriteByte('\f')
		case 'n':
			s.WriteByte('\n')
		case 'r':
			s.WriteByte('\r')
		case 't':
			s.WriteByte('\t')
		default: // \u, or not an escape at all
			return "", false
		}
	}
	return s.String(), true
}
