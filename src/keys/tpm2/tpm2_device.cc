#include "keys/tpm2/tpm2_device.h"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace devid::keys {
namespace {

// EsysOutput owns a buffer ESAPI allocated for an output parameter.
struct EsysFree {
  void operator()(void* p) const { Esys_Free(p); }
};
template <typename T>
using EsysOutput = std::unique_ptr<T, EsysFree>;

// EK template L-1's authPolicy: PolicySecret(TPM_RH_ENDORSEMENT) (TCG EK Credential Profile
// §B.3.3).
constexpr uint8_t kEkPolicy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                   0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                   0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

bool IsTctiError(TSS2_RC rc) { return (rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER; }

Error TssError(TSS2_RC rc, std::string_view action, ErrorCode tpm_refused = ErrorCode::kInternal) {
  std::string message = std::string(action) + ": " + Tss2_RC_Decode(rc);
  return Error(IsTctiError(rc) ? ErrorCode::kUnavailable : tpm_refused, std::move(message));
}

TPM2B_PUBLIC RsaStorageTemplate(TPMA_OBJECT attributes) {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& p = in.publicArea;
  p.type = TPM2_ALG_RSA;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = attributes;
  p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
  p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
  p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.rsaDetail.keyBits = 2048;
  p.parameters.rsaDetail.exponent = 0;
  return in;
}

// EkTemplate is the TCG EK template L-1, unique = 256 zero bytes, so every TSS derives the same
// EK from the endorsement seed (TCG EK Credential Profile §B.3.3).
TPM2B_PUBLIC EkTemplate() {
  TPM2B_PUBLIC in = RsaStorageTemplate(
      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
      TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
  in.publicArea.authPolicy.size = sizeof(kEkPolicy);
  std::memcpy(in.publicArea.authPolicy.buffer, kEkPolicy, sizeof(kEkPolicy));
  in.publicArea.unique.rsa.size = 256;
  return in;
}

// SrkTemplate is the SRK the Azure SDKs create (protocol notes §4.1).
TPM2B_PUBLIC SrkTemplate() {
  return RsaStorageTemplate(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                            TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                            TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
}

// AkTemplate is a restricted RSASSA-SHA256 signing key (TCG Provisioning Guidance, the AK
// template tpm2_createak uses).
TPM2B_PUBLIC AkTemplate() {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& p = in.publicArea;
  p.type = TPM2_ALG_RSA;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                       TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
  p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
  p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
  p.parameters.rsaDetail.keyBits = 2048;
  return in;
}

// EccSigningTemplate is an unrestricted ECDSA key the TPM generates and never lets go: no
// restricted or decrypt, fixedTPM and fixedParent (not duplicable, Part 1 §23.3). scheme NULL
// lets each TPM2_Sign choose ECDSA and the hash (Part 2 §12.2.3.6).
TPM2B_PUBLIC EccSigningTemplate(Tpm2EccCurve curve) {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& p = in.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                       TPMA_OBJECT_SIGN_ENCRYPT;
  p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID =
      curve == Tpm2EccCurve::kNistP256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  return in;
}

// EccPublicKey reads what devid needs from an ECC signing key's public area, refusing any other
// object: a restricted key signs only TPM-made data, a decrypt key is not ours.
Result<Tpm2EccPublicKey> EccPublicKey(const TPMT_PUBLIC& p, std::string_view where) {
  bool signing = (p.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) != 0 &&
                 (p.objectAttributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) == 0;
  const TPMS_ECC_PARMS& ecc = p.parameters.eccDetail;
  bool curve_known = ecc.curveID == TPM2_ECC_NIST_P256 || ecc.curveID == TPM2_ECC_NIST_P384;
  if (p.type != TPM2_ALG_ECC || !signing || !curve_known ||
      (ecc.scheme.scheme != TPM2_ALG_NULL && ecc.scheme.scheme != TPM2_ALG_ECDSA)) {
    return std::unexpected(
        InvalidArgument("the TPM object at " + std::string(where) +
                        " is not an unrestricted ECDSA signing key on NIST P-256 or P-384"));
  }
  Tpm2EccPublicKey out;
  out.curve = ecc.curveID == TPM2_ECC_NIST_P256 ? Tpm2EccCurve::kNistP256 : Tpm2EccCurve::kNistP384;
  out.x.assign(p.unique.ecc.x.buffer, p.unique.ecc.x.buffer + p.unique.ecc.x.size);
  out.y.assign(p.unique.ecc.y.buffer, p.unique.ecc.y.buffer + p.unique.ecc.y.size);
  out.attributes = p.objectAttributes;
  return out;
}

Result<std::vector<uint8_t>> MarshalPublic(const TPM2B_PUBLIC& pub) {
  std::vector<uint8_t> out(sizeof(TPM2B_PUBLIC));
  size_t offset = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out.data(), out.size(), &offset);
  if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "marshalling a TPM2B_PUBLIC"));
  out.resize(offset);
  return out;
}

Result<TPML_PCR_SELECTION> Sha256Selection(std::span<const uint32_t> pcrs) {
  TPML_PCR_SELECTION selection{};
  selection.count = 1;
  TPMS_PCR_SELECTION& bank = selection.pcrSelections[0];
  bank.hash = TPM2_ALG_SHA256;
  bank.sizeofSelect = 3;
  for (uint32_t pcr : pcrs) {
    if (pcr > 23) {
      return std::unexpected(InvalidArgument("PCR " + std::to_string(pcr) + " is not 0-23"));
    }
    bank.pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  }
  return selection;
}

// DerPrefixLength returns the length of the DER element at the start of bytes, or bytes.size()
// when it does not parse: vendors may pad an EK certificate's NV index after the certificate.
size_t DerPrefixLength(std::span<const uint8_t> bytes) {
  const unsigned char* p = bytes.data();
  long length = 0;
  int tag = 0, xclass = 0;
  int ret = ASN1_get_object(&p, &length, &tag, &xclass, static_cast<long>(bytes.size()));
  if ((ret & 0x80) != 0) {
    ERR_clear_error();  // not DER: leave the bytes as they are, and the queue empty
    return bytes.size();
  }
  if ((ret & 0x01) != 0) return bytes.size();  // indefinite length: BER, not DER
  size_t total = static_cast<size_t>(p - bytes.data()) + static_cast<size_t>(length);
  return std::min(total, bytes.size());
}

}  // namespace

class Tpm2Device::Impl {
 public:
  // Object is an ESYS_TR this call holds: a transient object or session is flushed from the
  // TPM when it goes. A persistent one stays: ESAPI keeps one ESYS_TR per persistent handle
  // (Esys_TR_FromTPMPublic returns it again) until it is evicted or the context ends.
  class Object {
   public:
    Object(ESYS_CONTEXT* ctx, ESYS_TR tr, bool flush) : ctx_(ctx), tr_(tr), flush_(flush) {}
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;
    ~Object() {
      if (flush_ && tr_ != ESYS_TR_NONE) Esys_FlushContext(ctx_, tr_);
    }
    ESYS_TR get() const { return tr_; }

   private:
    ESYS_CONTEXT* ctx_;
    ESYS_TR tr_;
    bool flush_;
  };

  // The ESAPI context is finalized before its TCTI (STYLE.md), by ~Impl.
  TSS2_TCTI_CONTEXT* tcti = nullptr;
  ESYS_CONTEXT* esys = nullptr;

  ~Impl() {
    if (esys != nullptr) Esys_Finalize(&esys);
    if (tcti != nullptr) Tss2_TctiLdr_Finalize(&tcti);
  }

  Result<bool> PersistentExists(uint32_t handle) {
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA* raw = nullptr;
    TSS2_RC rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_HANDLES, handle, 1, &more, &raw);
    EsysOutput<TPMS_CAPABILITY_DATA> data(raw);
    if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "listing persistent handles"));
    return data->data.handles.count > 0 && data->data.handles.handle[0] == handle;
  }

  Result<std::unique_ptr<Object>> Persistent(uint32_t handle, std::string_view what) {
    DEVID_ASSIGN_OR_RETURN(bool exists, PersistentExists(handle));
    if (!exists) {
      return std::unexpected(
          NotFound("the TPM has no " + std::string(what) + " at " + Hex(handle)));
    }
    ESYS_TR tr = ESYS_TR_NONE;
    TSS2_RC rc = Esys_TR_FromTPMPublic(esys, handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(
          TssError(rc, "opening the " + std::string(what) + " at " + Hex(handle)));
    }
    return std::make_unique<Object>(esys, tr, /*flush=*/false);
  }

  // Persist makes the transient object permanent at handle, replacing any object there
  // (TPM2_EvictControl, Part 3 §28.5).
  Status Persist(Object& transient, uint32_t handle, std::string_view what) {
    DEVID_ASSIGN_OR_RETURN(bool exists, PersistentExists(handle));
    if (exists) {
      DEVID_ASSIGN_OR_RETURN(auto old, Persistent(handle, what));
      ESYS_TR none = ESYS_TR_NONE;
      TSS2_RC rc = Esys_EvictControl(esys, ESYS_TR_RH_OWNER, old->get(), ESYS_TR_PASSWORD,
                                     ESYS_TR_NONE, ESYS_TR_NONE, handle, &none);
      if (rc != TSS2_RC_SUCCESS) {
        return std::unexpected(TssError(rc, "removing the old " + std::string(what)));
      }
      // ESAPI keeps the evicted object's name for the handle; forget it, or the next
      // Esys_TR_FromTPMPublic for the handle fails on a name mismatch.
      ESYS_TR evicted = old->get();
      Esys_TR_Close(esys, &evicted);
    }
    ESYS_TR persistent = ESYS_TR_NONE;
    TSS2_RC rc = Esys_EvictControl(esys, ESYS_TR_RH_OWNER, transient.get(), ESYS_TR_PASSWORD,
                                   ESYS_TR_NONE, ESYS_TR_NONE, handle, &persistent);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(
          TssError(rc, "persisting the " + std::string(what) + " at " + Hex(handle)));
    }
    return Ok();
  }

  // PrimaryKey reads the key at handle, or creates it under hierarchy from in and persists it.
  Result<std::vector<uint8_t>> PrimaryKey(uint32_t handle, ESYS_TR hierarchy,
                                          const TPM2B_PUBLIC& in, std::string_view what) {
    DEVID_ASSIGN_OR_RETURN(bool exists, PersistentExists(handle));
    if (!exists) {
      TPM2B_SENSITIVE_CREATE sensitive{};
      TPM2B_DATA outside{};
      TPML_PCR_SELECTION creation_pcrs{};
      ESYS_TR created = ESYS_TR_NONE;
      TSS2_RC rc = Esys_CreatePrimary(esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                      &sensitive, &in, &outside, &creation_pcrs, &created, nullptr,
                                      nullptr, nullptr, nullptr);
      if (rc != TSS2_RC_SUCCESS) {
        return std::unexpected(TssError(rc, "creating the " + std::string(what)));
      }
      Object transient(esys, created, /*flush=*/true);
      DEVID_TRY(Persist(transient, handle, what));
    }
    return ReadPublic(handle, what);
  }

  // CreateUnderSrk creates a key from in under the SRK (which must exist), persists it at handle
  // and returns its public area.
  Result<EsysOutput<TPM2B_PUBLIC>> CreateUnderSrk(const TPM2B_PUBLIC& in, uint32_t handle,
                                                  std::string_view what) {
    DEVID_ASSIGN_OR_RETURN(auto srk, Persistent(kTpm2SrkHandle, "SRK"));
    TPM2B_SENSITIVE_CREATE sensitive{};
    TPM2B_DATA outside{};
    TPML_PCR_SELECTION creation_pcrs{};
    TPM2B_PRIVATE* raw_private = nullptr;
    TPM2B_PUBLIC* raw_public = nullptr;
    TSS2_RC rc =
        Esys_Create(esys, srk->get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &in,
                    &outside, &creation_pcrs, &raw_private, &raw_public, nullptr, nullptr, nullptr);
    EsysOutput<TPM2B_PRIVATE> key_private(raw_private);
    EsysOutput<TPM2B_PUBLIC> key_public(raw_public);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(rc, "creating the " + std::string(what)));
    }
    ESYS_TR loaded = ESYS_TR_NONE;
    rc = Esys_Load(esys, srk->get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                   key_private.get(), key_public.get(), &loaded);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(rc, "loading the " + std::string(what)));
    }
    Object transient(esys, loaded, /*flush=*/true);
    DEVID_TRY(Persist(transient, handle, what));
    return key_public;
  }

  Result<std::vector<uint8_t>> ReadPublic(uint32_t handle, std::string_view what) {
    DEVID_ASSIGN_OR_RETURN(auto pub, ReadPublicArea(handle, what));
    return MarshalPublic(*pub);
  }

  // EkPolicySession starts a policy session satisfied by PolicySecret(TPM_RH_ENDORSEMENT), the
  // EK's authPolicy (TCG EK Credential Profile §B.6).
  Result<std::unique_ptr<Object>> EkPolicySession() {
    TPMT_SYM_DEF symmetric{};
    symmetric.algorithm = TPM2_ALG_NULL;
    ESYS_TR session = ESYS_TR_NONE;
    TSS2_RC rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &symmetric,
                                       TPM2_ALG_SHA256, &session);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(rc, "starting the EK policy session"));
    }
    auto guard = std::make_unique<Object>(esys, session, /*flush=*/true);
    rc = Esys_PolicySecret(esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                           ESYS_TR_NONE, nullptr, nullptr, nullptr, 0, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "PolicySecret(endorsement)"));
    return guard;
  }

  // EncryptionSession starts an HMAC session salted to the SRK whose first command and response
  // parameters travel AES-128-CFB encrypted (TPM 2.0 Part 1 §21), so secrets crossing the bus
  // (the credential ActivateCredential releases, the key Import is given) are never in clear.
  Result<std::unique_ptr<Object>> EncryptionSession() {
    DEVID_ASSIGN_OR_RETURN(auto srk, Persistent(kTpm2SrkHandle, "SRK"));
    TPMT_SYM_DEF symmetric{};
    symmetric.algorithm = TPM2_ALG_AES;
    symmetric.keyBits.aes = 128;
    symmetric.mode.aes = TPM2_ALG_CFB;
    ESYS_TR session = ESYS_TR_NONE;
    TSS2_RC rc = Esys_StartAuthSession(esys, srk->get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, nullptr, TPM2_SE_HMAC, &symmetric,
                                       TPM2_ALG_SHA256, &session);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(rc, "starting the parameter encryption session"));
    }
    auto guard = std::make_unique<Object>(esys, session, /*flush=*/true);
    rc = Esys_TRSess_SetAttributes(
        esys, session, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION,
        0xff);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(rc, "setting the parameter encryption session"));
    }
    return guard;
  }

  // Activate runs TPM2_ActivateCredential with the EK for the object at object_handle, the
  // credential coming back encrypted in encryption. The caller cleanses it.
  Result<EsysOutput<TPM2B_DIGEST>> Activate(uint32_t object_handle, const TPM2B_ID_OBJECT& id,
                                            const TPM2B_ENCRYPTED_SECRET& secret,
                                            const Object& encryption) {
    DEVID_ASSIGN_OR_RETURN(auto ek, Persistent(kTpm2EkHandle, "EK"));
    DEVID_ASSIGN_OR_RETURN(auto object, Persistent(object_handle, "credential's object"));
    DEVID_ASSIGN_OR_RETURN(auto session, EkPolicySession());
    TPM2B_DIGEST* raw = nullptr;
    TSS2_RC rc = Esys_ActivateCredential(esys, object->get(), ek->get(), ESYS_TR_PASSWORD,
                                         session->get(), encryption.get(), &id, &secret, &raw);
    EsysOutput<TPM2B_DIGEST> credential(raw);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(
          rc, "activating the credential (it was not made for this TPM's EK and that object)",
          ErrorCode::kUnauthenticated));
    }
    return credential;
  }

  // NvBufferMax is the most bytes one TPM2_NV_Read returns (TPM2_PT_NV_BUFFER_MAX, Part 2
  // §6.13), capped at what TPM2B_MAX_NV_BUFFER holds.
  Result<uint32_t> NvBufferMax() {
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA* raw = nullptr;
    TSS2_RC rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                    TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more, &raw);
    EsysOutput<TPMS_CAPABILITY_DATA> data(raw);
    if (rc != TSS2_RC_SUCCESS)
      return std::unexpected(TssError(rc, "reading TPM2_PT_NV_BUFFER_MAX"));
    const TPML_TAGGED_TPM_PROPERTY& properties = data->data.tpmProperties;
    if (properties.count == 0 || properties.tpmProperty[0].property != TPM2_PT_NV_BUFFER_MAX ||
        properties.tpmProperty[0].value == 0) {
      return std::unexpected(Internal("the TPM does not report TPM2_PT_NV_BUFFER_MAX"));
    }
    return std::min<uint32_t>(properties.tpmProperty[0].value, TPM2_MAX_NV_BUFFER_SIZE);
  }

  // ReadPublicArea returns the public area of the persistent object at handle.
  Result<EsysOutput<TPM2B_PUBLIC>> ReadPublicArea(uint32_t handle, std::string_view what) {
    DEVID_ASSIGN_OR_RETURN(auto object, Persistent(handle, what));
    TPM2B_PUBLIC* raw = nullptr;
    TSS2_RC rc = Esys_ReadPublic(esys, object->get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 &raw, nullptr, nullptr);
    EsysOutput<TPM2B_PUBLIC> pub(raw);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(TssError(rc, "reading the " + std::string(what)));
    }
    return pub;
  }

  static std::string Hex(uint32_t handle) {
    char text[16];
    std::snprintf(text, sizeof(text), "0x%08x", handle);
    return text;
  }
};

Tpm2Device::Tpm2Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tpm2Device::~Tpm2Device() = default;

Result<std::unique_ptr<Tpm2Device>> Tpm2Device::Open(std::string_view tcti) {
  auto impl = std::make_unique<Impl>();
  std::string conf(tcti);
  TSS2_RC rc = Tss2_TctiLdr_Initialize(conf.c_str(), &impl->tcti);
  if (rc != TSS2_RC_SUCCESS && conf.empty()) {
    return std::unexpected(Unavailable(
        "opening the default TPM TCTI (tpm2-abrmd, /dev/tpmrm0, /dev/tpm0, then a simulator on "
        "port 2321): " +
        std::string(Tss2_RC_Decode(rc))));
  }
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(Unavailable("opening TPM TCTI \"" + conf + "\": " + Tss2_RC_Decode(rc)));
  }
  rc = Esys_Initialize(&impl->esys, impl->tcti, nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(
        Unavailable("starting ESAPI on TCTI \"" + conf + "\": " + Tss2_RC_Decode(rc)));
  }
  // A TPM the platform already started answers TPM_RC_INITIALIZE (Part 3 §9.3).
  rc = Esys_Startup(impl->esys, TPM2_SU_CLEAR);
  if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
    return std::unexpected(
        Unavailable("TPM2_Startup on TCTI \"" + conf + "\": " + Tss2_RC_Decode(rc)));
  }
  return std::unique_ptr<Tpm2Device>(new Tpm2Device(std::move(impl)));
}

Result<std::vector<uint8_t>> Tpm2Device::EndorsementKey() {
  return impl_->PrimaryKey(kTpm2EkHandle, ESYS_TR_RH_ENDORSEMENT, EkTemplate(), "EK");
}

Result<std::vector<uint8_t>> Tpm2Device::StorageRootKey() {
  return impl_->PrimaryKey(kTpm2SrkHandle, ESYS_TR_RH_OWNER, SrkTemplate(), "SRK");
}

Result<std::vector<uint8_t>> Tpm2Device::ReadEndorsementKeyCertificate() {
  constexpr uint32_t kIndex = kTpm2RsaEkCertificateIndex;
  DEVID_ASSIGN_OR_RETURN(bool exists, impl_->PersistentExists(kIndex));
  if (!exists) return std::vector<uint8_t>{};
  ESYS_TR index = ESYS_TR_NONE;
  TSS2_RC rc =
      Esys_TR_FromTPMPublic(impl_->esys, kIndex, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &index);
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(
        TssError(rc, "opening the EK certificate's NV index " + Impl::Hex(kIndex)));
  }
  TPM2B_NV_PUBLIC* raw_public = nullptr;
  rc = Esys_NV_ReadPublic(impl_->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &raw_public,
                          nullptr);
  EsysOutput<TPM2B_NV_PUBLIC> nv_public(raw_public);
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(
        TssError(rc, "reading the public area of NV index " + Impl::Hex(kIndex)));
  }
  TPMA_NV attributes = nv_public->nvPublic.attributes;
  if ((attributes & TPMA_NV_WRITTEN) == 0) return std::vector<uint8_t>{};
  ESYS_TR auth = ESYS_TR_NONE;
  if ((attributes & TPMA_NV_AUTHREAD) != 0) {
    auth = index;
  } else if ((attributes & TPMA_NV_OWNERREAD) != 0) {
    auth = ESYS_TR_RH_OWNER;
  } else {
    return std::unexpected(FailedPrecondition("the EK certificate in NV index " +
                                              Impl::Hex(kIndex) +
                                              " is readable only with platform authorization"));
  }
  DEVID_ASSIGN_OR_RETURN(uint32_t chunk, impl_->NvBufferMax());
  std::vector<uint8_t> out;
  const uint16_t size = nv_public->nvPublic.dataSize;
  // TPM2_NV_Read returns at most TPM2_PT_NV_BUFFER_MAX bytes per call (Part 3 §31.13).
  while (out.size() < size) {
    uint16_t n = static_cast<uint16_t>(std::min<size_t>(chunk, size - out.size()));
    TPM2B_MAX_NV_BUFFER* raw_data = nullptr;
    rc = Esys_NV_Read(impl_->esys, auth, index, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                      static_cast<uint16_t>(out.size()), &raw_data);
    EsysOutput<TPM2B_MAX_NV_BUFFER> data(raw_data);
    if (rc != TSS2_RC_SUCCESS) {
      return std::unexpected(
          TssError(rc, "reading the EK certificate from NV index " + Impl::Hex(kIndex)));
    }
    if (data->size == 0) break;
    out.insert(out.end(), data->buffer, data->buffer + data->size);
  }
  out.resize(DerPrefixLength(out));
  return out;
}

Status Tpm2Device::ImportActivationBlob(std::span<const uint8_t> blob, uint32_t handle) {
  // The blob is six TPM2Bs (protocol notes §4.3); the last, the encrypted URI, is optional.
  TPM2B_ID_OBJECT id{};
  TPM2B_ENCRYPTED_SECRET secret{};
  TPM2B_PRIVATE duplicate{};
  TPM2B_ENCRYPTED_SECRET in_sym_seed{};
  TPM2B_PUBLIC key_public{};
  size_t offset = 0;
  auto malformed = [](std::string_view field) {
    return std::unexpected(
        InvalidArgument("the DPS activation blob is malformed at its " + std::string(field)));
  };
  if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob.data(), blob.size(), &offset, &id)) {
    return malformed("TPM2B_ID_OBJECT");
  }
  if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(blob.data(), blob.size(), &offset, &secret)) {
    return malformed("credential secret");
  }
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob.data(), blob.size(), &offset, &duplicate)) {
    return malformed("TPM2B_PRIVATE");
  }
  if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(blob.data(), blob.size(), &offset, &in_sym_seed)) {
    return malformed("import seed");
  }
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob.data(), blob.size(), &offset, &key_public)) {
    return malformed("TPM2B_PUBLIC");
  }
  if (key_public.publicArea.type != TPM2_ALG_KEYEDHASH) {
    return std::unexpected(InvalidArgument("the DPS activation blob holds no keyed-hash key"));
  }

  DEVID_ASSIGN_OR_RETURN(auto encryption, impl_->EncryptionSession());
  DEVID_ASSIGN_OR_RETURN(auto inner_key, impl_->Activate(kTpm2SrkHandle, id, secret, *encryption));
  // The credential is the inner wrapper key; the AES key size is its length (§4.3).
  TPM2B_DATA encryption_key{};
  encryption_key.size = std::min<uint16_t>(inner_key->size, sizeof(encryption_key.buffer));
  std::memcpy(encryption_key.buffer, inner_key->buffer, encryption_key.size);
  OPENSSL_cleanse(inner_key->buffer, sizeof(inner_key->buffer));
  TPMT_SYM_DEF_OBJECT symmetric{};
  symmetric.algorithm = TPM2_ALG_AES;
  symmetric.keyBits.aes = static_cast<TPM2_KEY_BITS>(encryption_key.size * 8);
  symmetric.mode.aes = TPM2_ALG_CFB;

  DEVID_ASSIGN_OR_RETURN(auto srk, impl_->Persistent(kTpm2SrkHandle, "SRK"));
  TPM2B_PRIVATE* raw_private = nullptr;
  TSS2_RC rc =
      Esys_Import(impl_->esys, srk->get(), ESYS_TR_PASSWORD, encryption->get(), ESYS_TR_NONE,
                  &encryption_key, &key_public, &duplicate, &in_sym_seed, &symmetric, &raw_private);
  OPENSSL_cleanse(&encryption_key, sizeof(encryption_key));
  EsysOutput<TPM2B_PRIVATE> key_private(raw_private);
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(
        TssError(rc, "importing the DPS identity key (the blob was not made for this TPM's SRK)",
                 ErrorCode::kUnauthenticated));
  }
  ESYS_TR loaded = ESYS_TR_NONE;
  rc = Esys_Load(impl_->esys, srk->get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                 key_private.get(), &key_public, &loaded);
  if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "loading the DPS identity key"));
  Impl::Object transient(impl_->esys, loaded, /*flush=*/true);
  return impl_->Persist(transient, handle, "DPS identity key");
}

Result<std::array<uint8_t, 32>> Tpm2Device::HmacSha256(std::string_view message, uint32_t handle) {
  TPM2B_MAX_BUFFER buffer{};
  if (message.size() > TPM2_MAX_DIGEST_BUFFER) {
    return std::unexpected(InvalidArgument("a TPM HMAC message is at most " +
                                           std::to_string(TPM2_MAX_DIGEST_BUFFER) + " bytes"));
  }
  buffer.size = static_cast<uint16_t>(message.size());
  std::memcpy(buffer.buffer, message.data(), message.size());
  DEVID_ASSIGN_OR_RETURN(auto key, impl_->Persistent(handle, "HMAC key"));
  TPM2B_DIGEST* raw = nullptr;
  TSS2_RC rc = Esys_HMAC(impl_->esys, key->get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                         &buffer, TPM2_ALG_SHA256, &raw);
  EsysOutput<TPM2B_DIGEST> mac(raw);
  if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "TPM2_HMAC"));
  std::array<uint8_t, 32> out{};
  if (mac->size != out.size()) return std::unexpected(Internal("TPM2_HMAC: not a SHA-256 MAC"));
  std::memcpy(out.data(), mac->buffer, out.size());
  return out;
}

Result<std::vector<uint8_t>> Tpm2Device::CreateAttestationKey(uint32_t handle) {
  DEVID_ASSIGN_OR_RETURN(bool exists, impl_->PersistentExists(handle));
  if (exists) return impl_->ReadPublic(handle, "attestation key");
  DEVID_ASSIGN_OR_RETURN(auto ak_public,
                         impl_->CreateUnderSrk(AkTemplate(), handle, "attestation key"));
  return MarshalPublic(*ak_public);
}

Result<std::vector<uint8_t>> Tpm2Device::ActivateCredential(
    uint32_t object_handle, std::span<const uint8_t> id_object,
    std::span<const uint8_t> encrypted_secret) {
  TPM2B_ID_OBJECT id{};
  TPM2B_ENCRYPTED_SECRET secret{};
  size_t offset = 0;
  if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(id_object.data(), id_object.size(), &offset, &id) ||
      offset != id_object.size()) {
    return std::unexpected(InvalidArgument("the credential is not one TPM2B_ID_OBJECT"));
  }
  offset = 0;
  if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(encrypted_secret.data(), encrypted_secret.size(),
                                               &offset, &secret) ||
      offset != encrypted_secret.size()) {
    return std::unexpected(InvalidArgument("the secret is not one TPM2B_ENCRYPTED_SECRET"));
  }
  DEVID_ASSIGN_OR_RETURN(auto encryption, impl_->EncryptionSession());
  DEVID_ASSIGN_OR_RETURN(auto credential, impl_->Activate(object_handle, id, secret, *encryption));
  std::vector<uint8_t> out(credential->buffer, credential->buffer + credential->size);
  OPENSSL_cleanse(credential->buffer, sizeof(credential->buffer));
  return out;
}

Result<Tpm2Quote> Tpm2Device::Quote(std::span<const uint32_t> pcrs, std::span<const uint8_t> nonce,
                                    uint32_t ak_handle) {
  TPM2B_DATA qualifying{};
  if (nonce.size() > 64)
    return std::unexpected(InvalidArgument("a quote nonce is at most 64 bytes"));
  qualifying.size = static_cast<uint16_t>(nonce.size());
  std::memcpy(qualifying.buffer, nonce.data(), nonce.size());
  DEVID_ASSIGN_OR_RETURN(TPML_PCR_SELECTION selection, Sha256Selection(pcrs));
  DEVID_ASSIGN_OR_RETURN(auto ak, impl_->Persistent(ak_handle, "attestation key"));
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own RSASSA-SHA256
  TPM2B_ATTEST* raw_attest = nullptr;
  TPMT_SIGNATURE* raw_signature = nullptr;
  TSS2_RC rc = Esys_Quote(impl_->esys, ak->get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                          &qualifying, &scheme, &selection, &raw_attest, &raw_signature);
  EsysOutput<TPM2B_ATTEST> attest(raw_attest);
  EsysOutput<TPMT_SIGNATURE> signature(raw_signature);
  if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "TPM2_Quote"));
  Tpm2Quote out;
  out.attest.assign(attest->attestationData, attest->attestationData + attest->size);
  out.signature.resize(sizeof(TPMT_SIGNATURE));
  size_t offset = 0;
  rc = Tss2_MU_TPMT_SIGNATURE_Marshal(signature.get(), out.signature.data(), out.signature.size(),
                                      &offset);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TssError(rc, "marshalling the quote signature"));
  out.signature.resize(offset);
  return out;
}

Result<std::vector<std::vector<uint8_t>>> Tpm2Device::ReadPcrs(std::span<const uint32_t> pcrs) {
  std::vector<std::vector<uint8_t>> out;
  // One PCR per TPM2_PCR_Read keeps the answer's order the caller's (Part 3 §22.4 returns at
  // most eight values, in index order).
  for (uint32_t pcr : pcrs) {
    DEVID_ASSIGN_OR_RETURN(TPML_PCR_SELECTION selection,
                           Sha256Selection(std::span<const uint32_t>(&pcr, 1)));
    UINT32 counter = 0;
    TPML_PCR_SELECTION* raw_selection = nullptr;
    TPML_DIGEST* raw_values = nullptr;
    TSS2_RC rc = Esys_PCR_Read(impl_->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &selection,
                               &counter, &raw_selection, &raw_values);
    EsysOutput<TPML_PCR_SELECTION> read_selection(raw_selection);
    EsysOutput<TPML_DIGEST> values(raw_values);
    if (rc != TSS2_RC_SUCCESS) return std::unexpected(TssError(rc, "TPM2_PCR_Read"));
    if (values->count != 1) {
      return std::unexpected(
          Internal("TPM2_PCR_Read: the SHA-256 bank has no PCR " + std::to_string(pcr)));
    }
    out.emplace_back(values->digests[0].buffer,
                     values->digests[0].buffer + values->digests[0].size);
  }
  return out;
}

Result<Tpm2EccPublicKey> Tpm2Device::CreateEccSigningKey(uint32_t handle, Tpm2EccCurve curve) {
  DEVID_ASSIGN_OR_RETURN(bool exists, impl_->PersistentExists(handle));
  if (exists) {
    return std::unexpected(
        AlreadyExists("the TPM already holds an object at " + Impl::Hex(handle)));
  }
  DEVID_TRY(StorageRootKey());
  DEVID_ASSIGN_OR_RETURN(
      auto key_public, impl_->CreateUnderSrk(EccSigningTemplate(curve), handle, "ECC signing key"));
  return EccPublicKey(key_public->publicArea, Impl::Hex(handle));
}

Result<Tpm2EccPublicKey> Tpm2Device::ReadEccSigningKey(uint32_t handle) {
  DEVID_ASSIGN_OR_RETURN(auto pub, impl_->ReadPublicArea(handle, "signing key"));
  return EccPublicKey(pub->publicArea, Impl::Hex(handle));
}

Result<Tpm2EcdsaSignature> Tpm2Device::SignEcdsa(uint32_t handle, std::span<const uint8_t> digest) {
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_ECDSA;
  if (digest.size() == 32) {
    scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  } else if (digest.size() == 48) {
    scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA384;
  } else {
    return std::unexpected(InvalidArgument("a TPM ECDSA digest is 32 or 48 bytes, not " +
                                           std::to_string(digest.size())));
  }
  TPM2B_DIGEST in{};
  in.size = static_cast<uint16_t>(digest.size());
  std::memcpy(in.buffer, digest.data(), digest.size());
  DEVID_ASSIGN_OR_RETURN(auto key, impl_->Persistent(handle, "signing key"));
  // Without a ticket the TPM checks only the digest's size (Part 3 §20.2); an unrestricted key
  // may sign any digest.
  TPMT_TK_HASHCHECK validation{};
  validation.tag = TPM2_ST_HASHCHECK;
  validation.hierarchy = TPM2_RH_NULL;
  TPMT_SIGNATURE* raw = nullptr;
  TSS2_RC rc = Esys_Sign(impl_->esys, key->get(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in,
                         &scheme, &validation, &raw);
  EsysOutput<TPMT_SIGNATURE> signature(raw);
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(TssError(rc, "TPM2_Sign with the key at " + Impl::Hex(handle)));
  }
  const TPMS_SIGNATURE_ECC& ecdsa = signature->signature.ecdsa;
  Tpm2EcdsaSignature out;
  out.r.assign(ecdsa.signatureR.buffer, ecdsa.signatureR.buffer + ecdsa.signatureR.size);
  out.s.assign(ecdsa.signatureS.buffer, ecdsa.signatureS.buffer + ecdsa.signatureS.size);
  return out;
}

Status Tpm2Device::DeleteEccSigningKey(uint32_t handle) {
  DEVID_TRY(ReadEccSigningKey(handle));
  DEVID_ASSIGN_OR_RETURN(auto key, impl_->Persistent(handle, "signing key"));
  ESYS_TR evicted = key->get();
  ESYS_TR none = ESYS_TR_NONE;
  TSS2_RC rc = Esys_EvictControl(impl_->esys, ESYS_TR_RH_OWNER, evicted, ESYS_TR_PASSWORD,
                                 ESYS_TR_NONE, ESYS_TR_NONE, handle, &none);
  if (rc != TSS2_RC_SUCCESS) {
    return std::unexpected(TssError(rc, "removing the signing key at " + Impl::Hex(handle)));
  }
  // As in Persist: forget the evicted object's name, or a key made there later cannot be opened.
  Esys_TR_Close(impl_->esys, &evicted);
  return Ok();
}

}  // namespace devid::keys
