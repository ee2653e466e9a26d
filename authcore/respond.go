package authcore

import (
	"encoding/json"
	"net/http"
)

// WriteJSON sends v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// WriteMessage sends the {"message"} error shape.
func WriteMessage(w http.ResponseWriter, status int, message string) {
	WriteJSON(w, status, struct {
		Message string `json:"message"`
	}{message})
}

// WriteErrorCode sends the {"errorCode"} error shape (409, and 403 on
// guarded use).
func WriteErrorCode(w http.ResponseWriter, status int, code string) {
	WriteJSON(w, status, struct {
		ErrorCode string `json:"errorCode"`
	}{code})
}
