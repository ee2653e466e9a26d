package arena

import (
	"bytes"
	"testing"
)

func TestGen(t *testing.T) {
	var g Gen[int]
	Add(&g, 1, "a", "value of a", 7)
	Add(&g, 2, "b", []byte("value of b"), 8)
	v, m, ok := g.Lookup(1, "a")
	if !ok || string(v) != "value of a" || m != 7 {
		t.Fatalf("a: %q %d %v", v, m, ok)
	}
	// A value handed out stays as it was: a later Add appends, even past
	// the value's end.
	Add(&g, 1, "a", "new", 9)
	if string(v) != "value of a" || cap(v) != len(v) {
		t.Fatalf("a value handed out became %q (cap %d)", v, cap(v))
	}
	if v, _, _ := g.Lookup(1, "a"); string(v) != "new" {
		t.Fatalf("a after its replacement: %q", v)
	}
	// Under another key's hash, or as a prefix of a filed key: a miss.
	for _, c := range []struct {
		h   uint64
		key string
	}{{2, "a"}, {1, "b"}, {1, ""}, {2, "value"}, {3, "a"}} {
		if v, _, ok := g.Lookup(c.h, c.key); ok {
			t.Errorf("Lookup(%d, %q) = %q, want a miss", c.h, c.key, v)
		}
	}
	if g.Len() != 2 || g.Live() != len("anew")+len("bvalue of b") || g.Size() <= g.Live() {
		t.Fatalf("Len %d Live %d Size %d", g.Len(), g.Live(), g.Size())
	}
	g.Remove(2)
	g.Remove(2)
	if g.Has(2) || g.Len() != 1 || g.Live() != len("anew") {
		t.Fatalf("after Remove: Has %v Len %d Live %d", g.Has(2), g.Len(), g.Live())
	}
	n := New[int](4, 64)
	Add(&n, 5, "k", bytes.Repeat([]byte("x"), 100), 1)
	if v, _, ok := n.Lookup(5, "k"); !ok || len(v) != 100 {
		t.Fatalf("a value larger than the room asked for: %d %v", len(v), ok)
	}
}
