#include "endpoint.h"

#include "util.h"

#define O DIALECT_OPENAI
#define A DIALECT_ANTHROPIC
static const struct endpoint endpoints[] = {
    /* path                       dialect class      messages end rule   form   cont.  404 */
    { "/v1/chat/completions",     O, EPC_CHAT,        true,  END_DONE,   false, true,  false },
    { "/v1/completions",          O, EPC_CHAT,        false, END_DONE,   false, false, false },
    { "/v1/embeddings",           O, EPC_EMBEDDINGS,  false, END_DONE,   false, false, false },
    { "/v1/responses",            O, EPC_CHAT,        false, END_FINISH, false, false, false },
    { "/v1/images/generations",   O, EPC_IMAGES,      false, END_ANY,    false, false, false },
    { "/v1/images/edits",         O, EPC_IMAGES,      false, END_ANY,    true,  false, false },
    { "/v1/moderations",          O, EPC_MODERATIONS, false, END_DONE,   false, false, false },
    { "/v1/audio/speech",         O, EPC_AUDIO,       false, END_ANY,    false, false, false },
    { "/v1/audio/transcriptions", O, EPC_AUDIO,       false, END_ANY,    true,  false, false },
    { "/v1/audio/translations",   O, EPC_AUDIO,       false, END_ANY,    true,  false, false },
    /* Anthropic's Messages API, on the providers with an anthropic_base_url */
    { "/v1/messages",             A, EPC_MESSAGES,    true,  END_FINISH, false, true,  false },
    { "/v1/messages/count_tokens", A, EPC_MESSAGES,   true,  END_ANY,    false, false, true  },
};
#undef O
#undef A

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
