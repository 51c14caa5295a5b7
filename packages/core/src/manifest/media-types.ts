/** Media types of manifests, configs and layers (OCI image-spec and Docker image manifest v2). */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerV2Schema2: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerV2List: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerV2Schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerV2Schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** Whether the media type is a manifest list or an image index. */
export function isManifestListMediaType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerV2List;
}

/** Whether the media type is a single-image manifest img understands. */
export function isImageManifestMediaType(mediaType: string): boolean {
  return (
    mediaType === MediaTypes.ociManifest ||
    mediaType === MediaTypes.dockerV2Schema2 ||
    mediaType === MediaTypes.dockerV2Schema1 ||
    mediaType === MediaTypes.dockerV2Schema1Signed
  );
}

/** Every manifest media type img reads, lists included. */
export const supportedManifestMediaTypes: readonly string[] = [
  MediaTypes.ociManifest,
  MediaTypes.dockerV2Schema2,
  MediaTypes.dockerV2Schema1Signed,
  MediaTypes.dockerV2Schema1,
  MediaTypes.ociIndex,
  MediaTypes.dockerV2List,
];
