package bench

import "time"

// streamSink checks benchmark events against each connection's streams:
// one stream per channel of the connection and publisher (fanout), or per
// channel (channels).
type streamSink struct {
	perConn int    // channels per connection
	streams int    // streams per channel
	prefix  string // channel name prefix before the global channel index
}

func (s *streamSink) message(c *conn, event, msg []byte, now int64, sh *shard) {
	if string(event) != EventName {
		return
	}
	m, ok := ParseMark(msg)
	if !ok {
		c.counts.Unexpected++
		return
	}
	k := 0
	if s.perConn > 1 {
		k = channelIndex(valueOf(msg, "channel"), s.prefix) - c.chanBase
		if k < 0 || k >= s.perConn {
			c.counts.Unexpected++
			return
		}
	}
	st := 0
	if s.streams > 1 {
		st = int(m.Stream)
		if st >= s.streams {
			c.counts.Unexpected++
			return
		}
	}
	v := c.streams[k*s.streams+st].Observe(m.Seq)
	c.counts.Add(v)
	if v != Duplicate {
		sh.unique.Add(1)
		sh.lat.Record(time.Duration(now - m.TS))
		if now > sh.lastRecv.Load() {
			sh.lastRecv.Store(now)
		}
	}
}

// channelIndex parses the global index at the end of prefix+index, -1 if
// name is not of that form.
func channelIndex(name []byte, prefix string) int {
	if len(name) <= len(prefix) || string(name[:len(prefix)]) != prefix {
		return -1
	}
	n := 0
	for _, b := range name[len(prefix):] {
		if b < '0' || b > '9' || n > 1<<40 {
			return -1
		}
		n = n*10 + int(b-'0')
	}
	return n
}
