#include "endpoint.h"

#include "util.h"

static const struct endpoint endpoints[] = {
    { "/v1/chat/completions", DIALECT_OPENAI, EPC_CHAT, true, true, false },
    { "/v1/completions", DIALECT_OPENAI, EPC_CHAT, false, true, false },
    { "/v1/embeddings", DIALECT_OPENAI, EPC_EMBEDDINGS, false, true, false },
    { "/v1/responses", DIALECT_OPENAI, EPC_CHAT, false, false, false },
    { "/v1/images/generations", DIALECT_OPENAI, EPC_IMAGES, false, false, false },
    { "/v1/images/edits", DIALECT_OPENAI, EPC_IMAGES, false, false, true },
    { "/v1/moderations", DIALECT_OPENAI, EPC_MODERATIONS, false, true, false },
    { "/v1/audio/speech", DIALECT_OPENAI, EPC_AUDIO, false, false, false },
    { "/v1/audio/transcriptions", DIALECT_OPENAI, EPC_AUDIO, false, false, true },
    { "/v1/audio/translations", DIALECT_OPENAI, EPC_AUDIO, false, false, true },
};

static const char *const class_names[EPC__COUNT] = {
    [EPC_CHAT] = "chat",
    [EPC_EMBEDDINGS] = "embeddings",
    [EPC_AUDIO] = "audio",
    [EPC_IMAGES] = "images",
    [EPC_MODERATIONS] = "moderations",
    [EPC_MESSAGES] = "messages",
};

const struct endpoint *endpoint_find(const char *path, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(endpoints); i++)
        if (mem_eq(path, len, endpoints[i].path))
            return &endpoints[i];
    return NULL;
}

const char *endpoint_class_name(enum ep_class c)
{
    return c < EPC__COUNT ? class_names[c] : "?";
}
