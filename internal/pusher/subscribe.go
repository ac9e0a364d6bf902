package pusher

// parseSubscribe decodes the pusher:subscribe frame every connection sends,
// {"event":"pusher:subscribe","data":{"channel":…,"auth":…,"channel_data":…}},
// in one pass and without allocating more than its strings. It handles
// only the plain form clients send: those keys, each once and spelt
// exactly, string values without escapes, data an object. Anything else —
// another event, an escape, a key encoding/json would match case-blind —
// returns ok false, for ParseMessage and DecodeData to judge; when ok, the
// result is theirs (FuzzParseSubscribe checks it).
func parseSubscribe(b []byte) (d SubscribeData, ok bool) {
	p := jsonScan{b: b}
	var event, data bool
	if !p.open() {
		return d, false
	}
	for first := true; ; first = false {
		if p.close() {
			break
		}
		if !first && !p.comma() {
			return d, false
		}
		key, ok := p.key()
		if !ok {
			return d, false
		}
		switch string(key) {
		case "event":
			p.ws()
			v, ok := p.raw()
			if !ok || event || string(v) != "pusher:subscribe" {
				return d, false
			}
			event = true
		case "data":
			if data || !p.subscribeData(&d) {
				return d, false
			}
			data = true
		default:
			return d, false
		}
	}
	p.ws()
	return d, event && data && d.Channel != "" && p.i == len(b)
}

// subscribeData decodes the data object of parseSubscribe into d.
func (p *jsonScan) subscribeData(d *SubscribeData) bool {
	if !p.open() {
		return false
	}
	var seen [3]bool
	for first := true; ; first = false {
		if p.close() {
			return true
		}
		if !first && !p.comma() {
			return false
		}
		key, ok := p.key()
		if !ok {
			return false
		}
		var dst *string
		var i int
		switch string(key) {
		case "channel":
			dst, i = &d.Channel, 0
		case "auth":
			dst, i = &d.Auth, 1
		case "channel_data":
			dst, i = &d.ChannelData, 2
		default:
			return false
		}
		v, ok := p.str()
		if !ok || seen[i] {
			return false
		}
		seen[i] = true
		*dst = v
	}
}

// jsonScan reads the few JSON forms parseSubscribe accepts.
type jsonScan struct {
	b []byte
	i int
}

func (p *jsonScan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// punct consumes c after any whitespace.
func (p *jsonScan) punct(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScan) open() bool  { return p.punct('{') }
func (p *jsonScan) close() bool { return p.punct('}') }
func (p *jsonScan) comma() bool { return p.punct(',') }

// key reads a member's name and its colon. The name is only compared
// (switch string(key) does not copy it).
func (p *jsonScan) key() ([]byte, bool) {
	p.ws()
	raw, ok := p.raw()
	if !ok || !p.punct(':') {
		return nil, false
	}
	return raw, true
}

// str reads a string value, copied out of the frame.
func (p *jsonScan) str() (string, bool) {
	p.ws()
	raw, ok := p.raw()
	return string(raw), ok
}

// raw reads a string without escapes or control characters and returns
// its contents. Other bytes pass as they are: the session has checked that
// the whole frame is UTF-8, as encoding/json would otherwise replace what
// is not.
func (p *jsonScan) raw() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}
