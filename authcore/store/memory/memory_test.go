package memory_test

import (
	"testing"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/store/memory"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// TestConformance holds the memory store to the same contract as Redis.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) authcore.Store { return memory.New(nil) })
}
