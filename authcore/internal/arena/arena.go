// Package arena is the layout of authgate's per-request caches (verified
// tokens, held sessions): a generation of entries, each a key and a value
// of bytes with a little pointer-free metadata, that the garbage
// collector never has to look into.
//
// The collector visits every pointer of the live heap on each cycle. A
// cache of 100 000 entries held as strings and slices in a map gave it
// 200 000 to 300 000 objects to mark, tens of milliseconds per cycle, paid
// by the requests running meanwhile. A Gen holds the same in two objects:
// a map from a seeded hash of the key to a slot of integers, and one byte
// array that keys and values are appended to and never written over. A
// value handed out therefore stays as it was whatever the generation does
// next. Every look-up compares the key's text, so two keys of one hash
// can only miss, never answer for each other; callers bound a generation
// (Len, Size, Live) and start a new one when it is full.
package arena

// Gen is one generation. M is the metadata kept with each entry, and must
// hold no pointer for the point of the package to hold. The zero Gen is
// empty and ready to use.
type Gen[M any] struct {
	slots map[uint64]slot[M]
	bytes []byte
	live  int
}

// slot places an entry: its key at bytes[off:off+klen], its value right
// after, vlen bytes.
type slot[M any] struct {
	off, klen, vlen uint32
	meta            M
}

// MaxSize bounds the bytes of one generation: offsets are 32-bit.
const MaxSize = 1 << 31

// New returns an empty generation with room for about n entries of
// size bytes in all.
func New[M any](n, size int) Gen[M] {
	return Gen[M]{slots: make(map[uint64]slot[M], n), bytes: make([]byte, 0, min(size, MaxSize))}
}

// Lookup returns the value and metadata of key, filed under h. The value
// is a slice of the generation's bytes, never written to again; its
// capacity ends with it.
func (g *Gen[M]) Lookup(h uint64, key string) (val []byte, meta M, ok bool) {
	s, ok := g.slots[h]
	if !ok {
		return nil, meta, false
	}
	k := s.off + s.klen
	if string(g.bytes[s.off:k]) != key {
		return nil, meta, false
	}
	end := k + s.vlen
	return g.bytes[k:end:end], s.meta, true
}

// Has reports whether anything is filed under h.
func (g *Gen[M]) Has(h uint64) bool {
	_, ok := g.slots[h]
	return ok
}

// Add appends key and val and files them under h with meta, in place of
// what h had. The caller keeps Size()+len(key)+len(val) within MaxSize.
func Add[M any, V string | []byte](g *Gen[M], h uint64, key string, val V, meta M) {
	g.Remove(h)
	if g.slots == nil {
		g.slots = map[uint64]slot[M]{}
	}
	s := slot[M]{off: uint32(len(g.bytes)), klen: uint32(len(key)), vlen: uint32(len(val)), meta: meta}
	g.bytes = append(g.bytes, key...)
	g.bytes = append(g.bytes, val...)
	g.live += len(key) + len(val)
	g.slots[h] = s
}

// Remove drops what is filed under h, if anything. Its bytes stay until
// the generation goes.
func (g *Gen[M]) Remove(h uint64) {
	if s, ok := g.slots[h]; ok {
		g.live -= int(s.klen + s.vlen)
		delete(g.slots, h)
	}
}

// Len is the number of entries.
func (g *Gen[M]) Len() int { return len(g.slots) }

// Size is the bytes appended so far, removed entries' included.
func (g *Gen[M]) Size() int { return len(g.bytes) }

// Live is the bytes of the entries still filed.
func (g *Gen[M]) Live() int { return g.live }
