package multiapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/authgate/authgate/authcore/httpapi"
)

// MaxBodyBytes is the largest request body the Multi API reads.
const MaxBodyBytes = 64 << 10

type invalidField struct {
	Params    []string `json:"params"`
	FieldName string   `json:"fieldName"`
	Error     string   `json:"error"`
}

type badRequest struct {
	Message      string `json:"message"`
	SyntaxErrors struct {
		InvalidFields []invalidField `json:"invalidFields"`
	} `json:"syntaxErrors"`
}

// writeInvalid answers 400 in the documented shape.
func writeInvalid(w http.ResponseWriter, message string, fields ...invalidField) {
	var body badRequest
	body.Message = message
	body.SyntaxErrors.InvalidFields = fields
	for i := range body.SyntaxErrors.InvalidFields {
		if body.SyntaxErrors.InvalidFields[i].Params == nil {
			body.SyntaxErrors.InvalidFields[i].Params = []string{}
		}
	}
	if body.SyntaxErrors.InvalidFields == nil {
		body.SyntaxErrors.InvalidFields = []invalidField{}
	}
	httpapi.WriteJSON(w, http.StatusBadRequest, body)
}

// decodeBody reads a JSON body into v. On failure it has answered (400 for
// malformed input, 413 for an oversized body) and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		httpapi.WriteMessage(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes))
		return false
	case err != nil:
		writeInvalid(w, "request body could not be read")
		return false
	case len(data) == 0:
		writeInvalid(w, "request body is required")
		return false
	case !utf8.Valid(data):
		writeInvalid(w, "request body is not valid UTF-8")
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			writeInvalid(w, "a field has the wrong type", invalidField{FieldName: typeErr.Field, Error: "REGEX"})
			return false
		}
		writeInvalid(w, "request body is not valid JSON")
		return false
	}
	return true
}
