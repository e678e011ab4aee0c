import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useImageEvents } from '../../api/imageEvents.ts';
import { useSession } from '../../api/session.tsx';
import type { ImageImport } from '../../api/types.ts';
import { asChange, loadable } from '../../api/viewModel.ts';
import { ImagesPageView } from './ImagesPageView.tsx';

/** The workspace images in the runtime's store: import one (its steps live), see who uses each, remove one. */
export function ImagesPage() {
  const { api } = useSession();
  const qc = useQueryClient();
  const images = useQuery({ queryKey: ['images'], queryFn: api.images });
  // while the page is shown: the imports' steps, and the list fetched again as they end
  const live = useImageEvents();
  const refresh = () => qc.invalidateQueries({ queryKey: ['images'] });
  const importImage = useMutation({ mutationFn: (body: ImageImport) => api.importImage(body), onSuccess: refresh });
  const removeImage = useMutation({ mutationFn: (name: string) => api.removeImage(name), onSuccess: refresh });
  return (
    <ImagesPageView
      images={loadable(images)}
      progress={live.progress}
      live={live.connected}
      importImage={asChange(importImage)}
      removeImage={removeImage.mutateAsync}
    />
  );
}
