/* Qwen3-Next: not yet */
#define OLLM__FAMILIES_WIP_QWEN3_NEXT
