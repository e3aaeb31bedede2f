/* placeholder: no CUDA backend yet */
static ollm_result ollm__cuda_create(const ollm_model_config *cfg, ollm__log *lg, ollm__backend **out, const char **why) {
    (void)cfg; (void)lg; (void)out; *why = "this build has no CUDA backend yet"; return OLLM_ERR_NO_DEVICE;
}
OLLM_API ollm_result ollm_cuda_compile_kernels(const char *arch, const char *cache_dir, const char *nvrtc_path,
                                               int *n_kernels, char *err, size_t err_cap) {
    (void)arch; (void)cache_dir; (void)nvrtc_path; *n_kernels = 0;
    snprintf(err, err_cap, "this build has no CUDA backend yet"); return OLLM_ERR_UNSUPPORTED;
}
