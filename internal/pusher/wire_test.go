package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/channel"
)

func TestParseMessage(t *testing.T) {
	good := []struct {
		frame                string
		event, channel, data string // data "" means absent
	}{
		{`{"event":"pusher:ping","data":{}}`, "pusher:ping", "", `{}`},
		// The Java client's ping has no data.
		{`{"event": "pusher:ping"}`, "pusher:ping", "", ""},
		{`{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}`,
			"pusher:subscribe", "", `{"auth":"","channel":"my-channel"}`},
		{`{"event":"client-typing","channel":"private-chat","data":"just a string"}`,
			"client-typing", "private-chat", `"just a string"`},
		{`{"event":"client-x","channel":"presence-c","data":[1, 2,3]}`, "client-x", "presence-c", `[1, 2,3]`},
		{`{"event":"client-x","channel":"presence-c","data":null}`, "client-x", "presence-c", `null`},
		{"  \n{\"data\":7,\"event\":\"e\"}\t", "e", "", `7`},
		{`{"event":"e","unknown":{"nested":true}}`, "e", "", ""},
		{`{"event":"\u00e9v\"t"}`, `év"t`, "", ""},
	}
	for _, tt := range good {
		m, err := ParseMessage([]byte(tt.frame))
		if err != nil {
			t.Errorf("ParseMessage(%s): %v", tt.frame, err)
			continue
		}
		if m.Event != tt.event || m.Channel != tt.channel || string(m.Data) != tt.data {
			t.Errorf("ParseMessage(%s) = {%q %q %s}, want {%q %q %s}", tt.frame, m.Event, m.Channel, m.Data, tt.event, tt.channel, tt.data)
		}
	}

	bad := []struct {
		frame string
		want  error
	}{
		{``, ErrNotJSON},
		{`not json`, ErrNotJSON},
		{`{"event":"e"`, ErrNotJSON},
		{`{"event":"e"} trailing`, ErrNotJSON},
		{`[]`, ErrNotJSON},
		{`[{"event":"e"}]`, ErrNotJSON},
		{`"pusher:ping"`, ErrNotJSON},
		{`42`, ErrNotJSON},
		{`{"event":42}`, ErrNotJSON},
		{`{"event":"e","channel":7}`, ErrNotJSON},
		{`{"event":"e","data":}`, ErrNotJSON},
		{`{}`, ErrNoEvent},
		{`{"event":""}`, ErrNoEvent},
		{`{"channel":"c","data":{}}`, ErrNoEvent},
		{`{"event":null}`, ErrNoEvent},
	}
	for _, tt := range bad {
		m, err := ParseMessage([]byte(tt.frame))
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseMessage(%s) = %+v, %v; want %v", tt.frame, m, err, tt.want)
		}
	}
	// JSON null is not a message, whichever error says so.
	if _, err := ParseMessage([]byte(`null`)); err == nil {
		t.Error("ParseMessage(null) succeeded")
	}
}

func TestDecodeData(t *testing.T) {
	good := []struct {
		raw  string
		want SubscribeData
	}{
		{`{"channel":"private-a","auth":"k:s","channel_data":"{\"user_id\":\"1\"}"}`,
			SubscribeData{Channel: "private-a", Auth: "k:s", ChannelData: `{"user_id":"1"}`}},
		// The same object JSON-encoded into a string.
		{`"{\"channel\":\"private-a\",\"auth\":\"k:s\",\"channel_data\":\"{\\\"user_id\\\":\\\"1\\\"}\"}"`,
			SubscribeData{Channel: "private-a", Auth: "k:s", ChannelData: `{"user_id":"1"}`}},
		{`{"channel":"my-channel"}`, SubscribeData{Channel: "my-channel"}},
		{`  {"channel":"my-channel"}  `, SubscribeData{Channel: "my-channel"}},
		{"\n\"{\\\"channel\\\":\\\"c\\\"}\"\n", SubscribeData{Channel: "c"}},
		{`{"auth":"","channel":"c","other":1}`, SubscribeData{Channel: "c"}},
		{`{}`, SubscribeData{}},
		{`"{}"`, SubscribeData{}},
	}
	for _, tt := range good {
		var d SubscribeData
		if err := DecodeData(json.RawMessage(tt.raw), &d); err != nil {
			t.Errorf("DecodeData(%s): %v", tt.raw, err)
			continue
		}
		if d != tt.want {
			t.Errorf("DecodeData(%s) = %+v, want %+v", tt.raw, d, tt.want)
		}
	}

	bad := []string{
		``, `   `, `null`, ` null `, `""`, `"not json"`, `"{\"channel\":"`, `"\x"`,
		`123`, `true`, `[]`, `["channel"]`, `{"channel":5}`, `{"channel":"c"`,
		`"\"{\\\"channel\\\":\\\"c\\\"}\""`, // encoded twice
	}
	for _, raw := range bad {
		var d SubscribeData
		if err := DecodeData(json.RawMessage(raw), &d); !errors.Is(err, ErrBadData) {
			t.Errorf("DecodeData(%s) = %v (%+v), want ErrBadData", raw, err, d)
		}
	}
	if err := DecodeData(nil, &SubscribeData{}); !errors.Is(err, ErrBadData) {
		t.Errorf("DecodeData(nil) = %v, want ErrBadData", err)
	}

	var s SigninData
	if err := DecodeData(json.RawMessage(`{"auth":"key:sig","user_data":"{\"id\":\"1\"}"}`), &s); err != nil {
		t.Fatal(err)
	}
	if s != (SigninData{Auth: "key:sig", UserData: `{"id":"1"}`}) {
		t.Errorf("signin data = %+v", s)
	}
}

func TestParseChannelData(t *testing.T) {
	good := []struct {
		in, id, info string // info "" means nil
	}{
		{`{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`, "10", `{"name":"Mr. Pusher"}`},
		{`{"user_id":10,"user_info":{"name":"Mr. Pusher"}}`, "10", `{"name":"Mr. Pusher"}`},
		{`{"user_id":"fred","user_info":{"key":"value"}}`, "fred", `{"key":"value"}`},
		{`{"user_id": "123"}`, "123", ""},
		{`{"user_id":0}`, "0", ""},
		{`{"user_id":-7}`, "-7", ""},
		{`{"user_id":1.5e3}`, "1500", ""},
		{`{"user_id":12345678901234567890}`, "12345678901234567000", ""},
		{`{"user_id":1.0}`, "1", ""},
		{`{"user_id":1e2,"user_info":{"n":1}}`, "100", `{"n":1}`},
		{`{"user_id":"a\"b"}`, `a"b`, ""},
		{`{"user_id":"ą§"}`, "ą§", ""},
		{`{"user_id":"1","user_info":null}`, "1", ""},
		{`{"user_id":"1","user_info":[1,2]}`, "1", `[1,2]`},
		{`{"user_id":"1","user_info":"plain"}`, "1", `"plain"`},
		{`{"user_info":{"a":1},"user_id":"2","extra":true}`, "2", `{"a":1}`},
		// Names match exactly, and the last of a repeated one counts, as
		// in JSON.parse: the client and the other members see one user.
		{`{"user_id":"a","USER_ID":"b","User_Info":{"x":1}}`, "a", ""},
		{`{"USER_ID":"b","user_id":"a"}`, "a", ""},
		{`{"user_id":"a","user_id":"b"}`, "b", ""},
	}
	for _, tt := range good {
		cd, err := ParseChannelData(tt.in)
		if err != nil {
			t.Errorf("ParseChannelData(%s): %v", tt.in, err)
			continue
		}
		if cd.UserID != tt.id || string(cd.UserInfo) != tt.info || (tt.info == "") != (cd.UserInfo == nil) {
			t.Errorf("ParseChannelData(%s) = {%q %s}, want {%q %s}", tt.in, cd.UserID, cd.UserInfo, tt.id, tt.info)
		}
	}

	bad := []string{
		``, `not json`, `null`, `"10"`, `[]`, `{}`,
		`{"money": "1.32"}`, // the A28 vector: signed, but no user
		`{"user_id":""}`, `{"user_id":null}`, `{"user_id":true}`, `{"user_id":{}}`,
		`{"user_id":["1"]}`, `{"user_info":{"name":"x"}}`, `{"user_id":"1"`,
		`{"User_Id":"1"}`, `{"USER_ID":"1"}`,
		`{"user_id":1e400}`, `{"user_id":-1e400}`, // JavaScript's Infinity
	}
	for _, in := range bad {
		if cd, err := ParseChannelData(in); !errors.Is(err, ErrBadData) {
			t.Errorf("ParseChannelData(%s) = %+v, %v; want ErrBadData", in, cd, err)
		}
	}
}

func TestParseUserData(t *testing.T) {
	good := []struct {
		in, id, info string
		watchlist    []string
	}{
		{`{"id":"12345"}`, "12345", "", nil},
		{`{"id":"123","name":"John Smith"}`, "123", "", nil},
		{`{"id":"1","user_info":{"name":"a"},"watchlist":["2","3"]}`, "1", `{"name":"a"}`, []string{"2", "3"}},
		{`{"id":"1","user_info":null,"watchlist":[]}`, "1", "", []string{}},
		{`{"id":"1","watchlist":null}`, "1", "", nil},
		{`{"id":"1","watchlist":["a\u0062"]}`, "1", "", []string{"ab"}},
		{`{"id":"ą§¶™€łü€ß£"}`, "ą§¶™€łü€ß£", "", nil},
		{`{"id":"a","ID":"b","Watchlist":["c"]}`, "a", "", nil},
		{`{"id":"a","id":"b"}`, "b", "", nil},
	}
	for _, tt := range good {
		ud, err := ParseUserData(tt.in)
		if err != nil {
			t.Errorf("ParseUserData(%s): %v", tt.in, err)
			continue
		}
		if ud.ID != tt.id || string(ud.UserInfo) != tt.info || (tt.info == "") != (ud.UserInfo == nil) {
			t.Errorf("ParseUserData(%s) = {%q %s}, want {%q %s}", tt.in, ud.ID, ud.UserInfo, tt.id, tt.info)
		}
		if strings.Join(ud.Watchlist, ",") != strings.Join(tt.watchlist, ",") || len(ud.Watchlist) != len(tt.watchlist) {
			t.Errorf("ParseUserData(%s).Watchlist = %q, want %q", tt.in, ud.Watchlist, tt.watchlist)
		}
	}

	bad := []string{
		``, `not json`, `null`, `[]`, `"x"`, `{}`,
		`{"id":123}`, // numeric ids are refused for sign-in
		`{"id":""}`, `{"id":null}`, `{"id":true}`, `{"id":["1"]}`, `{"user_id":"1"}`,
		`{"id":"1","watchlist":"2"}`, `{"id":"1","watchlist":[2]}`,
		`{"id":"1","watchlist":[null]}`, `{"id":"1","watchlist":["a",null]}`, `{"id":"1","watchlist":{}}`,
		`{"id":"1","watchlist":[["a"]]}`, `{"id":"1","watchlist":true}`,
		`{"ID":"1"}`, `{"Id":"1"}`,
	}
	for _, in := range bad {
		if ud, err := ParseUserData(in); !errors.Is(err, ErrBadData) {
			t.Errorf("ParseUserData(%s) = %+v, %v; want ErrBadData", in, ud, err)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b\c/d`, `"a\"b\\c/d"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\b\f", `"\u0008\u000c"`},
		{"\x7f", "\"\x7f\""},
		{"<a href='x'>&amp;</a>", `"<a href='x'>&amp;</a>"`},
		{"ą€😀", `"ą€😀"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"x\u2028y", `"x\u2028y"`},
		{"\ufffd", "\"\ufffd\""},
		{"\xff", `"\ufffd"`},
		{"a\xc3", `"a\ufffd"`},
		{"\xe2\x82", `"\ufffd\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // an encoded surrogate
		{"\xc0\xaf", `"\ufffd\ufffd"`},           // an overlong '/'
		{"ok\xffok\"", `"ok\ufffdok\""`},
		{`{"some":"data"}`, `"{\"some\":\"data\"}"`},
	}
	for _, tt := range tests {
		got := AppendString(nil, tt.in)
		if string(got) != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		checkAppendString(t, tt.in, got)
	}
	if got := AppendString([]byte("x:"), "y"); string(got) != `x:"y"` {
		t.Errorf("AppendString appended to x: = %s", got)
	}
}

// stdString is the JSON string encoding/json produces, without HTML escaping
// and with its short \b and \f escapes spelled as \u0008 and \u000c, the
// equivalent form AppendString uses.
func stdString(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	in := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		if in[i] != '\\' {
			out = append(out, in[i])
			continue
		}
		i++
		switch in[i] {
		case 'b':
			out = append(out, `\u0008`...)
		case 'f':
			out = append(out, `\u000c`...)
		default:
			out = append(out, '\\', in[i])
		}
	}
	return out
}

// checkAppendString checks AppendString's output for s against encoding/json.
func checkAppendString(t testing.TB, s string, got []byte) {
	t.Helper()
	if want := stdString(t, s); !bytes.Equal(got, want) {
		t.Fatalf("AppendString(%q) = %s, encoding/json gives %s", s, got, want)
	}
	if !json.Valid(got) || !utf8.Valid(got) {
		t.Fatalf("AppendString(%q) = %q is not valid UTF-8 JSON", s, got)
	}
	for _, c := range got {
		if c < 0x20 {
			t.Fatalf("AppendString(%q) = %q holds control byte %#x", s, got, c)
		}
	}
	var back, std string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(s)
	if err := json.Unmarshal(m, &std); err != nil {
		t.Fatal(err)
	}
	if back != std {
		t.Fatalf("AppendString(%q) decodes to %q, encoding/json's to %q", s, back, std)
	}
	if utf8.ValidString(s) && back != s {
		t.Fatalf("AppendString(%q) decodes to %q", s, back)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "abc", `"\`, "\x00\x1f\x7f", "\b\f\n\r\t", "<>&", "ą€😀", "\u2028\u2029",
		"\xff", "a\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", `{"some":"data"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		prefix := []byte("prefix:")
		got := AppendString(append([]byte(nil), prefix...), s)
		if !bytes.HasPrefix(got, prefix) {
			t.Fatalf("AppendString lost its prefix: %q", got)
		}
		checkAppendString(t, s, got[len(prefix):])
	})
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"pusher:ping"}`,
		`{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}`,
		`{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"k:s\"}"}`,
		`{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":"{\"user_id\":10,\"user_info\":{\"name\":\"x\"}}"}}`,
		`{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\",\"watchlist\":[\"2\"]}"}}`,
		`{"event":"client-x","channel":"private-a","data":[1,2]}`,
		`{"event":""}`, `null`, `[]`, `{`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := ParseMessage(frame)
		if err != nil {
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrNoEvent) {
				t.Fatalf("ParseMessage(%q): unexpected error %v", frame, err)
			}
			return
		}
		if m.Event == "" {
			t.Fatalf("ParseMessage(%q) accepted an empty event", frame)
		}
		if !json.Valid(frame) || bytes.TrimSpace(frame)[0] != '{' {
			t.Fatalf("ParseMessage(%q) accepted a frame that is not a JSON object", frame)
		}
		if len(m.Data) > 0 && !json.Valid(m.Data) {
			t.Fatalf("ParseMessage(%q).Data = %q is not JSON", frame, m.Data)
		}

		// What the session does next with the data must not panic either.
		var sub SubscribeData
		if DecodeData(m.Data, &sub) == nil {
			if c, err := channel.Parse(sub.Channel, 200); err == nil && c.Name != sub.Channel {
				t.Fatalf("channel name changed: %q -> %q", sub.Channel, c.Name)
			}
			if cd, err := ParseChannelData(sub.ChannelData); err == nil {
				if cd.UserID == "" {
					t.Fatalf("ParseChannelData(%q) accepted an empty user id", sub.ChannelData)
				}
				if cd.UserInfo != nil && !json.Valid(cd.UserInfo) {
					t.Fatalf("ParseChannelData(%q).UserInfo is not JSON", sub.ChannelData)
				}
			}
		}
		var signin SigninData
		if DecodeData(m.Data, &signin) == nil {
			if ud, err := ParseUserData(signin.UserData); err == nil && ud.ID == "" {
				t.Fatalf("ParseUserData(%q) accepted an empty id", signin.UserData)
			}
		}
	})
}

// A numeric user_id is the string JavaScript's String() makes of the
// number JSON.parse reads, as pusher-js keys its members: the expected
// strings are node's String(JSON.parse(literal)).
func TestNumericUserIDIsJavaScriptsString(t *testing.T) {
	for lit, want := range map[string]string{
		"1": "1", "1.0": "1", "1e2": "100", "1E+2": "100", "-5": "-5", "-0": "0", "0": "0",
		"0.5": "0.5", "1.50": "1.5", "1e21": "1e+21", "1e20": "100000000000000000000",
		"123456789012345678901234": "1.2345678901234569e+23", "1e-6": "0.000001", "1e-7": "1e-7",
		"12345678901234567890": "12345678901234567000", "0.000001234": "0.000001234",
		"1.5e-10": "1.5e-10", "9007199254740993": "9007199254740992", "1.5e3": "1500",
		"-1.25e-7": "-1.25e-7", "100e-2": "1", "1e-400": "0", "0.1": "0.1", "123e-20": "1.23e-18",
		"5e-324": "5e-324", "1.7976931348623157e308": "1.7976931348623157e+308", "-12.5e1": "-125",
	} {
		cd, err := ParseChannelData(`{"user_id":` + lit + `}`)
		if err != nil || cd.UserID != want {
			t.Errorf("user_id %s = %q, %v; want %q", lit, cd.UserID, err, want)
		}
	}
}
