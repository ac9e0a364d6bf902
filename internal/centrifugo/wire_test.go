package centrifugo

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeCommands(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		methods []string
		ids     []uint32
		err     error
	}{
		{"connect", `{"connect":{"token":"t","name":"js"},"id":1}`, []string{"connect"}, []uint32{1}, nil},
		{"batch in order", "{\"connect\":{},\"id\":1}\n{\"subscribe\":{\"channel\":\"news\",\"flag\":1},\"id\":2}", []string{"connect", "subscribe"}, []uint32{1, 2}, nil},
		{"blank lines skipped", "\n{\"id\":1,\"presence\":{\"channel\":\"a\"}}\n\n  \n{}\n", []string{"presence", ""}, []uint32{1, 0}, nil},
		{"pong", `{}`, []string{""}, []uint32{0}, nil},
		{"send", `{"send":{"data":{}}}`, []string{"send"}, []uint32{0}, nil},
		{"unknown fields", `{"id":3,"sub_refresh":{"channel":"$a","token":"x","type":1},"extra":[1]}`, []string{"sub_refresh"}, []uint32{3}, nil},
		{"empty", ``, nil, nil, nil},
		{"not an object", `[1]`, nil, nil, ErrBadCommand},
		{"bad json", `{"id":1,"connect":`, nil, nil, ErrBadCommand},
		{"bad second line", "{\"id\":1}\nnope", nil, nil, ErrBadCommand},
		{"negative id", `{"id":-1,"connect":{}}`, nil, nil, ErrBadCommand},
		{"too many", strings.Repeat("{}\n", MaxCommandsPerFrame+1), nil, nil, ErrTooManyCommands},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := DecodeCommands([]byte(tt.in), MaxCommandsPerFrame)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if len(cmds) != len(tt.methods) {
				t.Fatalf("%d commands, want %d", len(cmds), len(tt.methods))
			}
			for i := range cmds {
				if m := cmds[i].method(); m != tt.methods[i] || cmds[i].ID != tt.ids[i] {
					t.Errorf("command %d: %q id %d, want %q id %d", i, m, cmds[i].ID, tt.methods[i], tt.ids[i])
				}
			}
		})
	}
}

func TestDecodeCommandsMax(t *testing.T) {
	if _, err := DecodeCommands([]byte(strings.Repeat("{}\n", MaxCommandsPerFrame)), MaxCommandsPerFrame); err != nil {
		t.Fatalf("exactly the maximum: %v", err)
	}
}

func FuzzDecodeCommands(f *testing.F) {
	f.Add([]byte(`{"connect":{"token":"t"},"id":1}` + "\n" + `{"subscribe":{"channel":"a"},"id":2}`))
	f.Add([]byte(`{}`))
	f.Add([]byte("\n\n{\"publish\":{\"channel\":\"x\",\"data\":{\"a\":[1,2]}},\"id\":9}"))
	f.Add([]byte(`{"id":4294967296}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := DecodeCommands(data, 8)
		if err != nil {
			if cmds != nil {
				t.Fatal("commands returned with an error")
			}
			return
		}
		if len(cmds) > 8 {
			t.Fatalf("%d commands past the bound", len(cmds))
		}
		for i := range cmds {
			_ = cmds[i].IsPong()
			if p := cmds[i].Publish; p != nil && len(p.Data) > len(data) {
				t.Fatal("publish data longer than the message")
			}
		}
	})
}
