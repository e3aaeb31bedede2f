/* GPT-OSS: not yet */
#define OLLM__FAMILIES_WIP_GPT_OSS
